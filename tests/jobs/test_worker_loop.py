"""The worker as an object: start(), stop(), join(), with no process-wide side effects."""

import signal
import threading
import time
from contextlib import suppress
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import delay, enqueue
from jobs.claiming import claim_due_jobs
from jobs.claims import Claim, Holdings, State
from jobs.clock import database_now
from jobs.models import Job, Worker
from jobs.running import JobTimeout
from jobs.worker import EXIT_OK, Pool, WorkerLoop, WorkerOptions
from tests.jobs.waiting import wait_for
from tests.testapp import faulty
from tests.testapp import jobs as targets
from tests.testapp.models import Event


@pytest.mark.django_db(transaction=True)
def test_a_loop_starts_stops_and_joins_and_leaves_signals_alone():
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    loop = WorkerLoop(WorkerOptions(pools=(Pool(size=2),), listen=False))
    assert loop.name is None  # made at start(): a process forked after import gets its own
    loop.start()
    assert loop.name.split(":")[1].isdigit()
    wait_for(lambda: Worker.objects.filter(name=loop.name).exists(), message="registration")
    job = delay(faulty.records)(7)
    wait_for(lambda: Job.objects.filter(pk=job.pk, status="succeeded").exists())
    assert loop.join(timeout=0.1) is None  # still running
    loop.stop()
    assert loop.join(timeout=15) == EXIT_OK
    assert not Worker.objects.filter(name=loop.name).exists()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers
    with pytest.raises(RuntimeError, match="starts once"):
        loop.start()


@pytest.mark.django_db(transaction=True)
def test_two_loops_in_one_process_are_two_workers():
    loops = [WorkerLoop(WorkerOptions(listen=False)).start() for _ in range(2)]
    assert loops[0].name != loops[1].name
    wait_for(lambda: Worker.objects.count() == 2, message="registration")
    for loop in loops:
        loop.stop()
    assert [loop.join(timeout=15) for loop in loops] == [EXIT_OK, EXIT_OK]


@pytest.mark.django_db
def test_a_claim_is_either_started_or_given_back_never_both():
    """A thread starting a read-ahead claim and the dispatcher giving it
    back (a second stop signal) raced: the job ran here and on another worker."""
    delay(faulty.records)(1)
    [job] = claim_due_jobs(worker_name="w", limit=1, now=timezone.now())
    holdings = Holdings()
    claim = Claim(job, pool=None, claimed_at=0.0, generation=0)
    holdings.add(claim)
    assert holdings.take(claim, State.RUNNING)
    assert not holdings.take(claim, State.RETURNING)  # the thread won: nothing goes back
    assert claim.state is State.RUNNING
    holdings.drop(claim)
    assert not holdings.take(claim, State.RUNNING)  # no longer held


@pytest.mark.django_db(transaction=True)
def test_a_dead_workers_job_on_its_last_attempt_gets_all_its_hooks():
    """Recovery ran the failure hook alone (error and after, and so
    django.tasks' task_finished, were skipped), and on the supervisor."""
    dead = Worker.objects.create(
        name="gone:1:abc",
        hostname="elsewhere",
        pid=1,
        last_heartbeat_at=database_now() - timedelta(hours=1),
    )
    job = enqueue(targets.NewsletterJob("x", []))
    Job.objects.filter(pk=job.pk).update(max_attempts=1)
    claim_due_jobs(worker_name=dead.name, limit=1)
    loop = WorkerLoop(WorkerOptions(listen=False)).start()
    wait_for(lambda: Event.objects.filter(name="hook:after").exists(), timeout=20)
    loop.stop()
    assert loop.join(timeout=15) == EXIT_OK
    assert Event.names() == ["hook:enqueue", "hook:error", "hook:failure", "hook:after"]
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("failed", 1)
    assert "gone:1:abc died during attempt 1" in job.last_error


def test_deadlines_follow_the_injected_clock():
    """The control thread's decisions, with a clock the test moves: the job
    is interrupted at its deadline, and its thread is given up on (and the
    worker stopped) when it ignores that past the grace."""
    now = [1000.0]
    loop = WorkerLoop(WorkerOptions(listen=False), monotonic=lambda: now[0])
    job = Job(pk=1, max_run_time=10)
    claim = Claim(job, pool=Pool(), claimed_at=now[0], generation=0, state=State.RUNNING)
    claim.deadline = now[0] + 10
    loop.holdings.add(claim)
    interrupted, release = threading.Event(), threading.Event()

    def job_code():
        with claim.interruptible:
            try:
                while not release.is_set():
                    time.sleep(0.01)  # Python code: interruptible
            except JobTimeout:
                interrupted.set()

    thread = threading.Thread(target=job_code)
    thread.start()
    wait_for(lambda: claim.interruptible.active, message="job code")
    loop._watch_claims(now[0] + 9.9)
    assert claim.interrupted_at is None
    now[0] += 10
    loop._watch_claims(now[0])
    assert claim.interrupted_with is JobTimeout and interrupted.wait(5)
    thread.join()

    # A thread that ignores it: still in job code when the grace is over.
    claim.interrupted_at, claim.interrupted_with = None, None
    blocked = threading.Thread(target=lambda: _ignore_interruptions(claim, release))
    blocked.start()
    wait_for(lambda: claim.interruptible.active, message="job code")
    now[0] += 100
    loop._watch_claims(now[0])
    assert claim.interrupted_with is JobTimeout and not claim.stuck
    now[0] += loop.config.INTERRUPT_GRACE
    loop._watch_claims(now[0])
    assert claim.stuck and loop.stuck and loop.stopping
    release.set()
    blocked.join()


def _ignore_interruptions(claim, release):
    with claim.interruptible:
        while not release.is_set():
            with suppress(JobTimeout):  # as C code would: the interruption never lands
                time.sleep(0.01)
