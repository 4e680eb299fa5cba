"""Concurrency limits hold across real worker processes and threads."""

import os
import signal
from itertools import pairwise
from pathlib import Path

import pytest
from django.db import connection

from jobs import delay
from jobs.models import Job
from tests.jobs.waiting import wait_for
from tests.testapp import keyed
from tests.testapp.models import Event

pytestmark = pytest.mark.slow

POSTGRES_LOG = Path("/var/log/postgresql/postgresql-15-main.log")


def _server_log_from(offset):
    """What the local PostgreSQL server logged since ``offset`` ("" if unreadable)."""
    if connection.vendor != "postgresql" or not os.access(POSTGRES_LOG, os.R_OK):
        return ""
    with POSTGRES_LOG.open(errors="replace") as log:
        log.seek(offset)
        return log.read()


def test_four_workers_of_eight_threads_never_overlap_two_jobs_of_a_key_limited_to_one(manage):
    log_start = POSTGRES_LOG.stat().st_size if os.access(POSTGRES_LOG, os.R_OK) else 0
    for n in range(120):
        delay(keyed.runs, concurrency_key="one")(f"one-{n}", 0.005)
    for n in range(60):
        key = f"other-{n % 3}"
        delay(keyed.runs, concurrency_key=key, concurrency_limit=2)(f"{key}-{n}", 0.005)
    workers = [manage("jobs", "work", "--concurrency", "8") for _ in range(4)]
    wait_for(
        lambda: Job.objects.filter(status="succeeded").count() == 180,
        timeout=120,
        message="every job to succeed",
    )
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    assert [worker.wait(timeout=30) for worker in workers] == [0, 0, 0, 0]
    output = "\n".join(worker.output for worker in workers)
    assert len({e.data["pid"] for e in Event.objects.filter(name="start")}) > 1  # shared out

    def intervals(prefix):
        events = Event.objects.filter(data__tag__startswith=prefix)
        spans = {}
        for event in events:
            spans.setdefault(event.data["tag"], {})[event.name] = event.data["at"]
        return sorted((span["start"], span["end"]) for span in spans.values())

    one = intervals("one-")
    assert len(one) == 120
    for (_, end), (next_start, _) in pairwise(one):
        assert next_start >= end, "two jobs of a key limited to one overlapped"
    for key in range(3):
        spans = intervals(f"other-{key}-")
        assert len(spans) == 20
        edges = sorted([(end, -1) for _, end in spans] + [(start, 1) for start, _ in spans])
        running, most = 0, 0
        for _, step in edges:  # at equal times an end sorts before a start
            running += step
            most = max(most, running)
        assert most <= 2, f"more than two jobs of other-{key} ran at once"
    everything = (output + _server_log_from(log_start)).lower()
    assert "deadlock" not in everything
    assert "could not serialize" not in everything
    assert "traceback" not in everything
