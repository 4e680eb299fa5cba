"""Cancellation: a waiting job never runs; a running one is asked, then stopped."""

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.tasks import TaskResultStatus
from django.utils import timezone

from jobs import cancel_requested, delay
from jobs.claiming import claim_due_jobs
from jobs.maintenance import recover_abandoned_jobs
from jobs.models import Job, Worker
from jobs.running import run_claimed_job
from jobs.worker import EXIT_OK, Pool, WorkerLoop, WorkerOptions
from tests.jobs.waiting import wait_for
from tests.testapp import faulty, keyed
from tests.testapp.models import Event


def _status(job):
    return Job.objects.values_list("status", flat=True).get(pk=job.pk)


@pytest.mark.django_db
class TestWaitingJobs:
    @pytest.mark.parametrize("run_at", [None, timedelta(hours=1)])
    def test_a_waiting_job_is_cancelled_and_never_claimed(self, run_at):
        job = delay(faulty.records, run_at=run_at)(1)
        assert job.cancel() == "cancelled"
        assert (job.status, job.finished_at is not None) == ("cancelled", True)
        later = timezone.now() + timedelta(hours=2)
        assert claim_due_jobs(worker_name="w", limit=10, now=later) == []

    def test_a_finished_job_is_left_as_it_was(self):
        job = delay(faulty.records)(1)
        Job.objects.filter(pk=job.pk).update(status="succeeded")
        assert job.cancel() == "finished"
        assert _status(job) == "succeeded"

    def test_a_cancelled_job_can_be_retried(self):
        job = delay(faulty.records)(1)
        job.cancel()
        assert Job.objects.filter(pk=job.pk).retry() == 1
        assert _status(job) == "ready"

    def test_its_task_result_is_failed(self):
        result = keyed.sync_account.enqueue("acme")
        Job.objects.get(pk=result.id).cancel()
        assert keyed.sync_account.get_result(result.id).status == TaskResultStatus.FAILED

    def test_a_job_asked_to_stop_before_it_started_never_starts(self):
        job = delay(faulty.records)(1)
        [claimed] = claim_due_jobs(worker_name="w", limit=1, now=timezone.now())
        assert job.cancel() == "requested"
        claimed.cancel_requested_at = timezone.now()  # as its worker heard it
        assert run_claimed_job(claimed) == "cancelled"
        assert not Event.objects.exists()
        assert _status(job) == "cancelled"

    def test_crash_recovery_ends_a_job_asked_to_stop_cancelled(self):
        job = delay(faulty.records)(1)
        claim_due_jobs(worker_name="dead", limit=1, now=timezone.now())
        Worker.objects.create(name="dead", hostname="x", pid=1, last_heartbeat_at=timezone.now())
        job.cancel()
        with time_machine.travel(timezone.now() + timedelta(minutes=5)):
            [recovered] = recover_abandoned_jobs(now=timezone.now())
        assert recovered.outcome == "cancelled"
        assert _status(job) == "cancelled"

    def test_outside_a_worker_nothing_is_requested(self):
        assert cancel_requested() is False


@pytest.mark.django_db
class TestCommand:
    def test_cancel_names_what_it_did(self):
        waiting = delay(faulty.records)(1)
        running = delay(faulty.records)(2)
        done = delay(faulty.records)(3)
        Job.objects.filter(pk=running.pk).update(status="running")
        Job.objects.filter(pk=done.pk).update(status="failed")
        out = StringIO()
        call_command("jobs", "cancel", str(waiting.pk), str(running.pk), str(done.pk), stdout=out)
        assert "Cancelled 1 waiting jobs; asked 1 running jobs to stop." in out.getvalue()
        assert f"Already finished, left as they were: {done.pk}." in out.getvalue()
        assert _status(waiting) == "cancelled"
        assert Job.objects.get(pk=running.pk).cancel_requested_at is not None

    def test_unknown_ids_are_an_error_and_nothing_is_cancelled(self):
        job = delay(faulty.records)(1)
        with pytest.raises(CommandError, match=r"No such jobs: 999999\."):
            call_command("jobs", "cancel", str(job.pk), "999999")
        assert _status(job) == "ready"


def _loop():
    # PostgreSQL: the request arrives by NOTIFY; SQLite: at the next heartbeat.
    listen = connection.vendor == "postgresql"
    return WorkerLoop(WorkerOptions(pools=(Pool(size=2),), listen=listen)).start()


@pytest.mark.django_db(transaction=True)
class TestRunningJobs:
    def test_a_job_that_looks_stops_itself_and_ends_cancelled(self):
        loop = _loop()
        try:
            job = delay(keyed.stops_when_asked)()
            wait_for(lambda: Event.objects.filter(name="cooperative_started").exists())
            assert job.cancel() == "requested"
            wait_for(lambda: _status(job) == "cancelled", timeout=15, message="cancelled")
        finally:
            loop.stop()
            assert loop.join(timeout=15) == EXIT_OK
        job.refresh_from_db()
        assert Event.objects.filter(name="cooperative_saw_request").exists()
        assert (job.attempts, job.last_error, job.result) == (1, "Cancelled on request", None)

    def test_a_job_that_does_not_look_is_interrupted_after_the_grace(self, settings):
        settings.JOBS = {**settings.JOBS, "CANCEL_GRACE": 0.5}
        loop = _loop()
        try:
            job = delay(keyed.ignores_requests)(30)
            wait_for(lambda: Event.objects.filter(name="stubborn_started").exists())
            job.cancel()
            wait_for(lambda: _status(job) == "cancelled", timeout=15, message="cancelled")
        finally:
            loop.stop()
            assert loop.join(timeout=15) == EXIT_OK
        job.refresh_from_db()
        assert not Event.objects.filter(name="stubborn_finished").exists()
        assert job.errors[-1]["exception_class"] == "jobs.running.JobCancelled"
        assert job.attempts == 1  # and no retry follows

    def test_a_keyed_job_cancelled_while_running_frees_its_slot(self):
        loop = _loop()
        try:
            first = delay(keyed.stops_when_asked, concurrency_key="k")()
            second = delay(faulty.records, concurrency_key="k")(2)
            wait_for(lambda: Event.objects.filter(name="cooperative_started").exists())
            assert _status(second) == "blocked"
            first.cancel()
            wait_for(lambda: _status(second) == "succeeded", timeout=15, message="the next job")
        finally:
            loop.stop()
            assert loop.join(timeout=15) == EXIT_OK
        assert _status(first) == "cancelled"
