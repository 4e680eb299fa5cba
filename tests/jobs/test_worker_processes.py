"""Real `manage.py jobs` worker processes, real signals, a shared database."""

import signal
import time
from collections import Counter

import pytest

from jobs import delay, enqueue_many
from jobs.models import Job, Worker
from tests.jobs.waiting import wait_for
from tests.testapp import jobs as targets
from tests.testapp.models import Event

pytestmark = pytest.mark.slow


def test_several_workers_run_2000_jobs_each_exactly_once(manage):
    enqueue_many(targets.RecordNumber(n) for n in range(2000))
    workers = [manage("jobs", "workoff", "--concurrency", "2") for _ in range(3)]
    for worker in workers:
        assert worker.wait(timeout=240) == 0, worker.output
    counts = Counter(Event.objects.filter(name="number").values_list("data__n", flat=True))
    assert len(counts) == 2000, [w.output for w in workers] and set(counts.values()) == {1}
    assert Job.objects.exclude(status="succeeded").count() == 0
    assert Job.objects.filter(attempts=1).count() == 2000
    shares = [int(w.output.split(" jobs ran")[0].split()[-1]) for w in workers]
    assert sum(shares) == 2000
    assert Worker.objects.count() == 0  # each unregistered on exit


@pytest.mark.parametrize(
    "target, exit_status, status",
    [
        # Python code: interrupted, put back at once, the worker exits cleanly.
        ("busy_forever", 0, "ready"),
        # Blocked in C (time.sleep) past the interrupt grace: the worker exits
        # with status 1 at once and puts the job back due a moment later, when
        # its thread is surely gone, so it never runs beside itself.
        ("blocking_sleep", 1, "scheduled"),
    ],
)
def test_sigterm_puts_a_long_job_back_without_spending_an_attempt(
    manage, target, exit_status, status
):
    job = delay(getattr(targets, target))()
    worker = manage("jobs", "work", env={"JOBS_TEST_SHUTDOWN_TIMEOUT": "1"})
    wait_for(lambda: Event.objects.filter(name__endswith="started").exists(), message="job start")
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == exit_status, worker.output
    elapsed = time.monotonic() - started
    job.refresh_from_db()
    assert (job.status, job.attempts, job.locked_by) == (status, 0, "")
    assert elapsed < 10  # shutdown timeout 1 s, interrupt grace 5 s: well under Heroku's 30


def test_sigterm_lets_a_short_job_finish(manage):
    job = delay(targets.sleep)(1.0)
    worker = manage("jobs", "work", env={"JOBS_TEST_SHUTDOWN_TIMEOUT": "10"})
    wait_for(lambda: Event.objects.filter(name="sleep_started").exists(), message="job start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0, worker.output
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("succeeded", 1)


def test_second_ctrl_c_puts_the_job_back_at_once(manage):
    job = delay(targets.busy_forever)()
    worker = manage("jobs", "work", env={"JOBS_TEST_SHUTDOWN_TIMEOUT": "60"})
    wait_for(lambda: Event.objects.filter(name="busy_started").exists(), message="job start")
    worker.send_signal(signal.SIGINT)
    time.sleep(0.3)  # a person pressing Ctrl-C twice
    worker.send_signal(signal.SIGINT)
    assert worker.wait(timeout=10) == 0, worker.output
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("ready", 0)


def test_second_ctrl_c_interrupts_a_c_call_when_it_returns(manage):
    """As the README says: code blocked in one C call (time.sleep) is
    interrupted when that call returns, not at once."""
    job = delay(targets.sleep)(2)
    worker = manage("jobs", "work", env={"JOBS_TEST_SHUTDOWN_TIMEOUT": "60"})
    wait_for(lambda: Event.objects.filter(name="sleep_started").exists(), message="job start")
    worker.send_signal(signal.SIGINT)
    time.sleep(0.3)  # two presses, not one signal the kernel merges
    worker.send_signal(signal.SIGINT)
    assert worker.wait(timeout=10) == 0, worker.output
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("ready", 0)
    assert not Event.objects.filter(name="sleep_finished").exists()  # stopped as the call returned


def test_second_ctrl_c_gives_up_on_a_c_call_after_the_interrupt_grace(manage):
    """As the README says: a job still in its C call INTERRUPT_GRACE after the
    interruption is stuck; the worker gives up on its thread and exits (1),
    and the job goes back without spending an attempt."""
    job = delay(targets.blocking_sleep)()
    env = {"JOBS_TEST_SHUTDOWN_TIMEOUT": "60", "JOBS_TEST_INTERRUPT_GRACE": "1"}
    worker = manage("jobs", "work", env=env)
    wait_for(lambda: Event.objects.filter(name="blocking_started").exists(), message="job start")
    worker.send_signal(signal.SIGINT)
    time.sleep(0.3)  # two presses, not one signal the kernel merges
    worker.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    assert worker.wait(timeout=15) == 1, worker.output
    assert time.monotonic() - signalled < 1 + 5, worker.output
    assert "thread did not stop within 1s of WorkerShutdown" in worker.output
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("scheduled", 0)


def test_sigkill_mid_job_is_recovered_by_another_worker(manage):
    job = delay(targets.hang_first_attempt)("k1")
    doomed = manage("jobs", "work")
    wait_for(lambda: Event.objects.filter(name="hang").exists(), message="first attempt")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    killed_at = time.monotonic()
    rescuer = manage("jobs", "work")
    wait_for(lambda: Job.objects.filter(pk=job.pk, status="succeeded").exists(), message="recovery")
    recovery = time.monotonic() - killed_at
    rescuer.send_signal(signal.SIGTERM)
    assert rescuer.wait(timeout=20) == 0
    job.refresh_from_db()
    assert job.attempts == 2  # the crash counted
    assert job.errors[0]["exception_class"] == "jobs.maintenance.WorkerLost"
    # Heartbeat timeout is 3 s in the tests, plus the first retry's backoff.
    assert recovery < 3 + 5 + 1 + 5, recovery


def test_a_job_past_its_max_run_time_is_interrupted_and_counted(manage):
    from jobs import enqueue

    job = enqueue(targets.SlowJob())
    worker = manage("jobs", "workoff")
    assert worker.wait(timeout=30) == 1, worker.output  # a failed attempt
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("scheduled", 1)  # retried later
    assert job.errors[0]["exception_class"] == "jobs.running.JobTimeout"
    assert "exceeded max_run_time of 1 s" in job.last_error
    assert "1 jobs ran: 0 succeeded, 1 failed" in worker.output


@pytest.mark.django_db(transaction=True)
def test_an_error_of_the_worker_itself_still_counts_the_attempt(monkeypatch):
    """If running a job fails outside the job (a bug of ours), the attempt is
    recorded as failed, so the job cannot come back forever uncounted."""
    from jobs.worker import WorkerLoop, WorkerOptions

    def broken(*args, **kwargs):
        raise RuntimeError("bug in the runner")

    monkeypatch.setattr("jobs.executor.run_claimed_job", broken)
    job = delay(targets.noop)()
    worker = WorkerLoop(WorkerOptions(exit_on_complete=True, listen=False))
    assert worker.run() == 0
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("scheduled", 1)
    assert job.last_error == "RuntimeError: bug in the runner"
    assert worker.counts["retry"] == 1


@pytest.mark.django_db(transaction=True)
def test_short_jobs_are_claimed_in_batches_and_each_run_once():
    """Read-ahead grows with how short jobs are: one thread running 300
    no-op jobs claims them in a handful of statements, not one per job."""
    from jobs.worker import WorkerLoop, WorkerOptions

    enqueue_many(targets.RecordNumber(n) for n in range(300))
    worker = WorkerLoop(WorkerOptions(exit_on_complete=True, listen=False))
    assert worker.run() == 0
    assert worker.counts["succeeded"] == 300
    counts = Counter(Event.objects.filter(name="number").values_list("data__n", flat=True))
    assert len(counts) == 300 and set(counts.values()) == {1}
    claims = worker.dispatcher.claim_sizes
    assert len(claims) < 40, claims
    assert max(claims) > 2  # more than the two per thread of plain read-ahead


@pytest.mark.django_db(transaction=True)
def test_a_busy_worker_still_promotes_scheduled_jobs_that_come_due():
    """A worker never idle (so never waking for the next run_at) promotes
    scheduled jobs on its own tick: an urgent job due in a second does not
    wait for the backlog to drain."""
    from datetime import timedelta

    from jobs.worker import WorkerLoop, WorkerOptions

    backlog = [delay(targets.sleep)(0.12) for _ in range(30)]  # about 3.6 s of work
    urgent = delay(targets.noop, priority=10, run_at=timedelta(seconds=1))()
    assert urgent.status == "scheduled"
    worker = WorkerLoop(WorkerOptions(exit_on_complete=True, listen=False))
    assert worker.run() == 0
    urgent.refresh_from_db()
    last_start = max(
        Job.objects.filter(pk__in=[j.pk for j in backlog]).values_list("locked_at", flat=True)
    )
    assert urgent.status == "succeeded"
    assert urgent.locked_at < last_start - timedelta(seconds=1), (urgent.locked_at, last_start)
