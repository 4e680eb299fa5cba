"""Group commit: threads that finish together share one guarded UPDATE."""

import threading

import pytest
from django.db import connections
from django.utils import timezone

from jobs import delay
from jobs.claiming import claim_due_jobs
from jobs.finishing import SuccessRecorder
from jobs.models import Job
from tests.testapp import jobs as targets


@pytest.mark.django_db(transaction=True)
def test_concurrent_successes_are_all_recorded_and_lost_claims_are_not():
    for _ in range(40):
        delay(targets.noop)()
    claimed = claim_due_jobs(worker_name="w", limit=40)
    lost = claimed[0]
    Job.objects.filter(pk=lost.pk).update(lease="another claim's lease")
    record = SuccessRecorder()
    outcomes = {}
    barrier = threading.Barrier(8)

    def finish(jobs):
        barrier.wait()
        try:
            for job in jobs:
                outcomes[job.pk] = record(job, timezone.now(), {"n": job.pk})
        finally:
            connections.close_all()

    threads = [threading.Thread(target=finish, args=(claimed[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.pop(lost.pk) is False
    assert set(outcomes.values()) == {True} and len(outcomes) == len(claimed) - 1
    rows = Job.objects.exclude(pk=lost.pk)
    assert set(rows.values_list("status", flat=True)) == {"succeeded"}
    assert all(job.result == {"n": job.pk} and job.finished_at for job in rows)
    assert Job.objects.get(pk=lost.pk).status == "running"


@pytest.mark.django_db
def test_a_write_error_reaches_the_waiting_thread(monkeypatch):
    job = delay(targets.noop)()
    [claimed] = claim_due_jobs(worker_name="w", limit=1)

    def broken(*args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("jobs.finishing._update", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        SuccessRecorder()(claimed, timezone.now(), None)
    job.refresh_from_db()
    assert job.status == "running"


@pytest.mark.django_db(transaction=True)
def test_one_success_the_database_refuses_does_not_fail_the_others():
    """PostgreSQL refuses a NUL character in JSON. The batch it is in is
    written again one by one: only that job's thread sees the error. (Job
    results are cleaned of NULs before they get here, see test_running; this
    is the net under that.)"""
    from django.db import connection

    from jobs.finishing import _Success

    if connection.vendor != "postgresql":
        pytest.skip("SQLite stores a NUL in JSON text; only PostgreSQL refuses it")
    for _ in range(5):
        delay(targets.noop)()
    claimed = claim_due_jobs(worker_name="w", limit=5)
    bad = claimed[2]
    batch = [
        _Success(job, timezone.now(), {"text": "nul \x00"} if job is bad else {"n": job.pk})
        for job in claimed
    ]
    SuccessRecorder()._write(batch)  # what the thread that writes for all does
    refused = batch.pop(2)
    assert refused.recorded is None and "\\u0000" in str(refused.error)
    assert [item.recorded for item in batch] == [True] * 4
    statuses = dict(Job.objects.values_list("pk", "status"))
    assert statuses.pop(bad.pk) == "running"
    assert set(statuses.values()) == {"succeeded"}
