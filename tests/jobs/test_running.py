"""Running a claimed job: hooks, retries with backoff, giving up, leases."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from jobs import delay, enqueue
from jobs.claiming import claim_due_jobs
from jobs.models import Job
from jobs.running import default_backoff, run_claimed_job
from jobs.testing import work_off
from tests.testapp import jobs as targets
from tests.testapp.models import Event, Photo

pytestmark = pytest.mark.django_db

START = "2027-06-01 12:00:00Z"  # after any job created outside the travel


def test_failure_runs_error_and_after_hooks_then_retries():
    job = enqueue(targets.NewsletterJob("x", [], fail_times=1))
    with time_machine.travel(START, tick=False):
        assert work_off().outcomes == ("retry",)
    assert Event.names()[1:] == ["hook:before", "perform", "hook:error", "hook:after"]
    job.refresh_from_db()
    assert (job.status, job.attempts, job.last_error) == ("scheduled", 1, "ValueError: not yet")
    [error] = job.errors
    assert error["exception_class"] == "builtins.ValueError"
    assert 'raise ValueError("not yet")' in error["traceback"]
    assert error["attempt"] == 1 and error["worker"].startswith("testing:")


def test_retry_schedule_is_attempts_to_the_fourth_plus_five_with_jitter():
    job = delay(targets.fail)()
    now = timezone.datetime.fromisoformat(START)
    with time_machine.travel(now, tick=False) as clock:
        for attempt in range(1, 5):
            assert work_off().outcomes == ("retry",)
            job.refresh_from_db()
            waited = (job.run_at - timezone.now()).total_seconds()
            base = attempt**4 + 5
            assert base <= waited <= base * 1.1, (attempt, waited)
            clock.move_to(job.run_at - timedelta(seconds=1))
            assert work_off().outcomes == ()  # not a second early
            clock.move_to(job.run_at)
        assert job.attempts == 4


def test_backoff_jitter_spreads_retries():
    delays = {round(default_backoff(3), 3) for _ in range(20)}
    assert len(delays) > 1 and all(86 <= d <= 86 * 1.1 for d in delays)


def test_gives_up_after_max_attempts_and_runs_failure_hook():
    job = enqueue(targets.LimitedJob())
    with time_machine.travel(START, tick=False) as clock:
        assert work_off(queues=["limited"]).outcomes == ("retry",)
        clock.shift(timedelta(hours=1))
        assert work_off(queues=["limited"]).outcomes == ("failed",)
    job.refresh_from_db()
    assert (job.status, job.attempts, len(job.errors)) == ("failed", 2, 2)
    assert job.failed_at and job.finished_at
    assert Event.objects.get(name="hook:failure").data == {"attempts": 2}


def test_max_attempts_setting_is_the_default(settings):
    settings.JOBS = {**settings.JOBS, "MAX_ATTEMPTS": 1}
    delay(targets.fail)()
    assert work_off().outcomes == ("failed",)


def test_reschedule_at_hook_overrides_the_schedule():
    job = enqueue(targets.CustomScheduleJob())
    with time_machine.travel(START, tick=False):
        work_off()
        job.refresh_from_db()
        assert job.run_at == timezone.now() + timedelta(minutes=1)


def test_deleted_model_instance_fails_at_once_without_retries():
    photo = Photo.objects.create(title="gone")
    job = delay(photo).upload()
    photo.delete()
    assert work_off().outcomes == ("failed",)
    job.refresh_from_db()
    assert job.status == "failed" and job.attempts == 1
    assert "Photo with pk=" in job.last_error and "no longer exists" in job.last_error


def test_a_job_that_lost_its_claim_cannot_record_an_outcome():
    job = delay(targets.noop)()
    [claimed] = claim_due_jobs(worker_name="stalled", limit=1, now=timezone.now())
    # Meanwhile crash recovery gave the job to another worker.
    Job.objects.filter(pk=job.pk).update(status="ready")
    [taken_over] = claim_due_jobs(worker_name="rescuer", limit=1, now=timezone.now())
    assert run_claimed_job(taken_over) == "succeeded"
    assert run_claimed_job(claimed) == "lost"
    job.refresh_from_db()
    assert (job.status, job.locked_by, job.attempts) == ("succeeded", "rescuer", 2)


def test_return_values_that_json_cannot_hold_are_not_stored():
    job = delay(targets.record)("x")
    work_off()
    job.refresh_from_db()
    assert job.result == {}
