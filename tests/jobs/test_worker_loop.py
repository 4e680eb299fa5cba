"""The worker as an object: start(), stop(), join(), with no process-wide side effects."""

import signal

import pytest
from django.utils import timezone

from jobs import delay
from jobs.claiming import claim_due_jobs
from jobs.claims import Claim, Holdings, State
from jobs.models import Job, Worker
from jobs.worker import EXIT_OK, Pool, WorkerLoop, WorkerOptions
from tests.jobs.waiting import wait_for
from tests.testapp import faulty


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
