"""Whatever job code does, the worker records it as the job's attempt and lives on.

Job code may raise SystemExit or KeyboardInterrupt, leave a transaction open,
put NUL characters where PostgreSQL cannot store them, or raise an exception
that cannot even be printed. Each is a failed (or cleaned) attempt of that
job alone: the thread runs the next job as if nothing happened.
"""

import pytest
from django.utils import timezone

from jobs import delay, enqueue
from jobs.claiming import claim_due_jobs
from jobs.models import Job
from jobs.running import fail_attempt, record_success
from jobs.testing import work_off
from jobs.worker import Pool, WorkerLoop, WorkerOptions
from tests.jobs.waiting import wait_for
from tests.testapp import faulty
from tests.testapp.models import Event


def _work_off_in_one_thread():
    """A real worker (its own threads and connections), one executor thread."""
    worker = WorkerLoop(WorkerOptions(pools=(Pool(size=1),), exit_on_complete=True, listen=False))
    assert worker.run() == 0
    return worker


@pytest.mark.django_db
@pytest.mark.parametrize(
    "target, exception_class",
    [
        (faulty.exits, "builtins.SystemExit"),
        (faulty.interrupts, "builtins.KeyboardInterrupt"),
        (faulty.raises_base_exception, "tests.testapp.faulty.CustomBaseException"),
    ],
)
def test_base_exceptions_from_job_code_are_failed_attempts(target, exception_class):
    job = delay(target)()
    assert work_off().outcomes == ("retry",)  # no exception escapes work_off
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("scheduled", 1)
    assert job.errors[-1]["exception_class"] == exception_class


@pytest.mark.django_db(transaction=True)
def test_a_thread_survives_jobs_that_exit_or_interrupt():
    """One executor thread: were it killed by the first job, nothing after
    it would run, and the claims would come back uncounted forever."""
    failing = [delay(faulty.exits)(), delay(faulty.interrupts)()]
    after = delay(faulty.records)(1)
    worker = _work_off_in_one_thread()
    assert (worker.counts["retry"], worker.counts["succeeded"]) == (2, 1)
    for job in failing:
        job.refresh_from_db()
        assert (job.status, job.attempts) == ("scheduled", 1)
    after.refresh_from_db()
    assert after.status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_autocommit_left_off_fails_that_job_and_not_the_next():
    careless = delay(faulty.leaves_autocommit_off)()
    after = delay(faulty.records)(2)
    worker = _work_off_in_one_thread()
    careless.refresh_from_db()
    assert (careless.status, careless.attempts) == ("scheduled", 1)
    assert careless.last_error.startswith("TransactionLeftOpen: the job returned inside")
    # Its write was rolled back; the next job on the same thread commits its own.
    assert list(Event.objects.values_list("name", flat=True)) == ["recorded"]
    after.refresh_from_db()
    assert after.status == "succeeded" and worker.counts["succeeded"] == 1


@pytest.mark.django_db
def test_an_exception_whose_str_raises_is_stored_under_its_own_class():
    job = delay(faulty.raises_unprintable)()
    work_off()
    job.refresh_from_db()
    assert job.errors[-1]["exception_class"] == "tests.testapp.faulty.UnprintableError"
    assert job.last_error == "UnprintableError: <str() failed: ValueError>"


@pytest.mark.django_db
def test_nul_characters_are_cleaned_from_errors_and_results():
    """PostgreSQL cannot store NUL in text or JSON: it refused the outcome,
    and the job re-ran forever without counting attempts. Both databases now
    store U+FFFD in its place."""
    failing, returning = delay(faulty.fails_with_nul)(), delay(faulty.returns_nul)()
    assert sorted(work_off().outcomes) == ["retry", "succeeded"]
    failing.refresh_from_db()
    assert (failing.status, failing.attempts) == ("scheduled", 1)
    assert failing.last_error == "RuntimeError: a NUL \ufffd in the message"
    assert "\x00" not in failing.errors[-1]["traceback"]
    returning.refresh_from_db()
    assert returning.result == {"text": "a\ufffdb", "key\ufffd": ["\ufffd"]}


@pytest.mark.django_db
def test_errors_keep_a_bounded_tail_and_a_total():
    """Every operator retry used to add to ``errors`` for ever, and every
    claim read the whole row back (0.8 MB after four retries of one job)."""
    job = enqueue(faulty.FailsForGood())
    for _ in range(Job.ERRORS_KEPT + 5):
        assert work_off().outcomes == ("failed",)
        Job.objects.filter(pk=job.pk).retry()
    job.refresh_from_db()
    assert job.error_count == Job.ERRORS_KEPT + 5
    assert len(job.errors) == Job.ERRORS_KEPT
    assert job.errors[-1]["attempt"] == 1


@pytest.mark.django_db
def test_a_claim_returns_only_what_a_run_needs():
    delay(faulty.fails_always)()
    [claimed] = claim_due_jobs(worker_name="w", limit=1)
    assert {"errors", "result", "last_error"} <= claimed.get_deferred_fields()
    assert claimed.lease and claimed.locked_by == "w"


@pytest.mark.django_db
def test_a_stale_claim_cannot_write_over_a_later_claim_of_the_same_worker():
    """The old guard (status, worker, attempts) matched again after an
    operator retry: a thread stuck in attempt 1 of a job that was written
    off, retried and claimed again by the same worker overwrote attempt 1 of
    the new claim. Leases differ per claim."""
    job = delay(faulty.fails_always)()
    [stale] = claim_due_jobs(worker_name="w", limit=1, now=timezone.now())
    Job.objects.filter(pk=job.pk).update(status="failed")  # written off meanwhile
    Job.objects.filter(pk=job.pk).retry()
    [fresh] = claim_due_jobs(worker_name="w", limit=1, now=timezone.now())
    assert (stale.locked_by, stale.attempts) == (fresh.locked_by, fresh.attempts)
    assert record_success(stale, timezone.now(), "stale") is False
    assert stale.status == "running"  # a write that matched nothing changes nothing in memory
    assert fail_attempt(stale, RuntimeError("late"), now=timezone.now()) == "lost"
    assert record_success(fresh, timezone.now(), "fresh") is True
    job.refresh_from_db()
    assert (job.status, job.result, job.error_count) == ("succeeded", "fresh", 0)


@pytest.mark.django_db(transaction=True)
def test_an_outcome_whose_reply_was_lost_is_not_taken_for_lost():
    """The UPDATE commits, then the connection drops before the reply: the
    retry matches nothing (the row is no longer running). The row shows the
    outcome is ours (same lease, our status), so it counts as recorded."""
    from django.db import OperationalError, connection

    delay(faulty.fails_always)()
    [claimed] = claim_due_jobs(worker_name="w", limit=1)
    calls = []

    def commit_then_lose_the_reply(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith("UPDATE") and not calls:
            calls.append(sql)
            raise OperationalError("server closed the connection unexpectedly")
        return result

    with connection.execute_wrapper(commit_then_lose_the_reply):
        outcome = fail_attempt(claimed, RuntimeError("x"), now=timezone.now(), permanent=True)
    assert calls and outcome == "failed"
    assert Job.objects.get(pk=claimed.pk).status == "failed"


@pytest.mark.django_db(transaction=True)
def test_released_and_recovered_jobs_wake_listening_workers():
    """Only enqueues notified: a job put back (released, or recovered from a
    dead worker) waited up to SLEEP_DELAY for an idle worker to poll."""
    from django.db import connection

    from jobs.listening import NotificationListener
    from jobs.running import release

    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite workers poll")
    heard = []
    listener = NotificationListener(True, heard.append).start()
    try:
        assert listener.connected.wait(10)
        delay(faulty.records, queue="emails")(1)
        [claimed] = claim_due_jobs(worker_name="w", limit=1)
        heard.clear()
        assert release(claimed, timezone.now())
        wait_for(lambda: "emails" in heard, timeout=5, message="NOTIFY on release")
        [claimed] = claim_due_jobs(worker_name="w", limit=1)
        heard.clear()
        outcome = fail_attempt(claimed, RuntimeError("x"), now=timezone.now(), retry_now=True)
        assert outcome == "retry"  # as crash recovery records it
        wait_for(lambda: "emails" in heard, timeout=5, message="NOTIFY on a retry due now")
    finally:
        listener.stop()
