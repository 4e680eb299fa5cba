"""A worker whose clock is minutes off neither runs jobs early nor starves them:
the database's clock decides (the worker's clock is faked with time-machine)."""

import signal
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import delay, enqueue
from jobs.clock import database_now
from jobs.models import Job
from tests.jobs.waiting import wait_for
from tests.testapp import faulty
from tests.testapp import jobs as targets

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TEN_MINUTES = 600


def _skewed_worker(manage, seconds):
    return manage("jobs", "work", env={"JOBS_TEST_CLOCK_SKEW": str(seconds)})


def _retry_delay(job):
    """How far after its failure a failed job was scheduled, by the database's clock."""
    job.refresh_from_db()
    return (job.run_at - database_now()).total_seconds()


@pytest.mark.parametrize("skew", [TEN_MINUTES, -TEN_MINUTES], ids=["ahead", "behind"])
def test_run_at_follows_the_database_clock(manage, skew):
    future = delay(targets.noop, run_at=timezone.now() + timedelta(minutes=5))()
    due = delay(targets.noop)()
    failing = enqueue(targets.LimitedJob())  # fails; retried after ~6 s
    worker = _skewed_worker(manage, skew)
    wait_for(lambda: Job.objects.filter(pk=due.pk, status="succeeded").exists(), timeout=15)
    wait_for(lambda: Job.objects.filter(pk=failing.pk, attempts=1, status="scheduled").exists())
    assert 3 < _retry_delay(failing) < 7.5  # not ten minutes early or late
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, worker.output
    future.refresh_from_db()
    assert (future.status, future.attempts) == ("scheduled", 0)  # not run early, nor promoted


def test_a_slow_clock_does_not_make_a_live_worker_look_dead(manage):
    job = enqueue(faulty.SlowFirstAttempt(seconds=5))  # > the 3 s heartbeat timeout
    skewed = _skewed_worker(manage, -TEN_MINUTES)
    wait_for(lambda: Job.objects.filter(pk=job.pk, status="running").exists())
    honest = manage("jobs", "work")  # reaps workers whose heartbeats look stale
    wait_for(lambda: Job.objects.filter(pk=job.pk, status="succeeded").exists(), timeout=30)
    job.refresh_from_db()
    assert (job.attempts, job.errors) == (1, [])
    assert job.result.startswith("attempt 1")
    for worker in (skewed, honest):
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, worker.output
