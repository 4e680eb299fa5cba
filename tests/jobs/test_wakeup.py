"""Instant wake-up (LISTEN/NOTIFY), waking for scheduled jobs, and pools."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from jobs import delay
from jobs.models import Job, Worker
from tests.jobs.waiting import wait_for
from tests.testapp import jobs as targets

pytestmark = pytest.mark.slow


def _started(worker):
    wait_for(Worker.objects.exists, message="the worker's heartbeat row")


def test_an_idle_listening_worker_picks_a_job_up_at_once(manage):
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite workers poll")
    worker = manage("jobs", "work", "--sleep-delay", "60")
    _started(worker)
    # The first job may be found by the look the listener takes when it
    # connects; by the second one it is surely listening.
    for _ in range(2):
        job = delay(targets.noop)()
        enqueued = time.monotonic()
        done = Job.objects.filter(pk=job.pk, status="succeeded")
        wait_for(done.exists, timeout=10)
        assert time.monotonic() - enqueued < 3  # not the 60 s poll


def test_retrying_a_failed_job_wakes_a_listening_worker(manage):
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite workers poll")
    job = delay(targets.noop)()
    Job.objects.filter(pk=job.pk).update(status="failed", attempts=25)
    worker = manage("jobs", "work", "--sleep-delay", "60")
    _started(worker)
    time.sleep(0.5)  # past the look the listener takes when it connects
    Job.objects.filter(pk=job.pk).retry()
    retried = time.monotonic()
    done = Job.objects.filter(pk=job.pk, status="succeeded")
    wait_for(done.exists, timeout=10)
    assert time.monotonic() - retried < 3  # not the 60 s poll


def test_without_listen_the_worker_polls(manage):
    worker = manage("jobs", "work", "--no-listen", "--sleep-delay", "0.2")
    _started(worker)
    job = delay(targets.noop)()
    wait_for(lambda: Job.objects.filter(pk=job.pk, status="succeeded").exists(), timeout=10)
    worker.send_signal(15)
    assert worker.wait(timeout=20) == 0
    assert "wake=poll:0.2s" in worker.output


def test_a_worker_wakes_when_a_scheduled_job_comes_due(manage):
    job = delay(targets.noop, run_at=timezone.now() + timedelta(seconds=2))()
    worker = manage("jobs", "work", "--sleep-delay", "60")
    _started(worker)
    wait_for(lambda: Job.objects.filter(pk=job.pk, status="succeeded").exists(), timeout=10)
    job.refresh_from_db()
    late = (job.locked_at - job.run_at).total_seconds()
    assert 0 <= late < 1.5, late


def test_pools_serve_their_own_queues(manage):
    emails = [delay(targets.noop, queue="emails")() for _ in range(3)]
    other = delay(targets.noop, queue="other")()
    worker = manage("jobs", "workoff", "--pool", "emails:2", "--pool", "reports,emails:1")
    assert worker.wait(timeout=30) == 0, worker.output
    assert "pools=emails:2 reports,emails:1" in worker.output
    assert Job.objects.filter(pk__in=[j.pk for j in emails], status="succeeded").count() == 3
    assert Job.objects.get(pk=other.pk).status == "ready"


def test_a_star_pool_serves_every_queue(manage):
    jobs = [delay(targets.noop, queue=q)() for q in ("a", "b", "c")]
    worker = manage("jobs", "workoff", "--pool", "*:2")
    assert worker.wait(timeout=30) == 0, worker.output
    assert Job.objects.filter(pk__in=[j.pk for j in jobs], status="succeeded").count() == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pool", "emails:2", "--queues", "emails"], "Use either --pool"),
        (["--pool", "emails"], "invalid _pool value"),
        (["--pool", "emails:0"], "invalid _pool value"),
    ],
)
def test_bad_pool_options(manage, args, message):
    worker = manage("jobs", "workoff", *args)
    assert worker.wait(timeout=30) != 0
    assert message in worker.output


@pytest.mark.django_db
def test_due_jobs_a_worker_cannot_take_do_not_make_it_spin():
    """The wake-up time comes from future jobs only: a due job in a paused
    queue, or outside the worker's priority range, would otherwise make the
    idle worker wake at once, again and again."""
    from jobs.dispatch import Dispatcher
    from jobs.models import PausedQueue
    from jobs.worker import WorkerLoop, WorkerOptions

    delay(targets.noop, queue="paused")()
    delay(targets.noop, priority=-50)()
    PausedQueue.objects.create(queue="paused")
    dispatcher = Dispatcher(WorkerLoop(WorkerOptions(min_priority=0)))
    assert dispatcher._next_scheduled() is None
    delay(targets.noop, run_at=timezone.now() + timedelta(seconds=30))()
    due_in = dispatcher._next_scheduled() - time.monotonic()
    assert 25 < due_in <= 30, due_in
