"""Concurrency limits hold across real worker processes and threads."""

import signal
from itertools import pairwise

import pytest

from jobs import delay
from jobs.models import Job
from tests.jobs.waiting import wait_for
from tests.pglog import ServerLog, lock_trouble
from tests.testapp import keyed
from tests.testapp.models import Event

pytestmark = pytest.mark.slow


def test_four_workers_of_eight_threads_never_overlap_two_jobs_of_a_key_limited_to_one(manage):
    server_log = ServerLog()
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
    assert lock_trouble(output + server_log.since()) == []
    assert "Traceback" not in output


def test_a_sigkilled_workers_slot_is_free_within_the_heartbeat_timeout(manage):
    """Its job is recovered (attempt counted) and the key's next job runs."""
    first = delay(keyed.runs, concurrency_key="k")("long", 60)
    second = delay(keyed.runs, concurrency_key="k")("next", 0)
    doomed = manage("jobs", "work", "--concurrency", "2")
    wait_for(lambda: Event.objects.filter(name="start", data__tag="long").exists(), timeout=30)
    assert Job.objects.get(pk=second.pk).status == "blocked"
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    survivor = manage("jobs", "work", "--concurrency", "2")
    # HEARTBEAT_TIMEOUT is 3 s in the tests: recovery, then the slot passes on.
    wait_for(
        lambda: Event.objects.filter(name="end", data__tag="next").exists(),
        timeout=30,
        message="the key's next job to run",
    )
    first.refresh_from_db()
    # The lost attempt was counted, and the job queued again (behind "next":
    # a recovered job is due from its recovery).
    assert first.errors[0]["exception_class"].endswith("WorkerLost")
    assert first.status != "failed"
    survivor.send_signal(signal.SIGKILL)  # it runs "long" again, in a C sleep
