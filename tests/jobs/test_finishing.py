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
    Job.objects.filter(pk=lost.pk).update(locked_by="someone else")
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
def test_a_write_error_reaches_every_waiting_thread(monkeypatch):
    job = delay(targets.noop)()
    [claimed] = claim_due_jobs(worker_name="w", limit=1)

    def broken(batch):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("jobs.finishing._update", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        SuccessRecorder()(claimed, timezone.now(), None)
    job.refresh_from_db()
    assert job.status == "running"
