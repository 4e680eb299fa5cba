"""Crash recovery of dead workers' jobs, and pruning of old successes."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from jobs import delay, enqueue
from jobs.claiming import claim_due_jobs
from jobs.maintenance import prune_succeeded, recover_abandoned_jobs, release_lost_replies
from jobs.models import Job, Worker
from jobs.running import failure_hooks
from tests.testapp import jobs as targets
from tests.testapp.models import Event

pytestmark = pytest.mark.django_db

LATER = timezone.datetime.fromisoformat("2027-06-01 12:00:00Z")


def _claimed_by(name, job_object=None, heartbeat_age=0.0, job=None):
    job = job or (enqueue(job_object) if job_object else delay(targets.noop)())
    Worker.objects.update_or_create(
        name=name,
        defaults={
            "hostname": "h",
            "pid": 1,
            "last_heartbeat_at": timezone.now() - timedelta(seconds=heartbeat_age),
        },
    )
    claim_due_jobs(worker_name=name, limit=1, now=timezone.now())
    job.refresh_from_db()
    assert job.status == "running"
    return job


def test_jobs_of_a_silent_worker_go_back_with_the_attempt_counted(settings):
    timeout = settings.JOBS["HEARTBEAT_TIMEOUT"]
    job = _claimed_by("dead", heartbeat_age=timeout + 1)
    assert len(recover_abandoned_jobs(timezone.now())) == 1
    job.refresh_from_db()
    assert (job.status, job.attempts, job.locked_by) == ("ready", 1, "dead")
    assert job.errors[0]["exception_class"] == "jobs.maintenance.WorkerLost"
    assert "worker dead died during attempt 1" in job.last_error
    assert not Worker.objects.filter(name="dead").exists()


def test_live_workers_keep_their_jobs():
    job = _claimed_by("alive")
    assert recover_abandoned_jobs(timezone.now()) == []
    job.refresh_from_db()
    assert job.status == "running"


def test_jobs_of_unregistered_workers_are_recovered_after_the_timeout(settings):
    job = delay(targets.noop)()
    claim_due_jobs(worker_name="ghost", limit=1, now=timezone.now())
    assert recover_abandoned_jobs(timezone.now()) == []  # too recent to judge
    later = timezone.now() + timedelta(seconds=settings.JOBS["HEARTBEAT_TIMEOUT"] + 1)
    assert len(recover_abandoned_jobs(later)) == 1
    job.refresh_from_db()
    assert job.status == "ready"


def test_a_job_that_keeps_killing_its_worker_ends_failed_with_its_failure_hook(settings):
    timeout = settings.JOBS["HEARTBEAT_TIMEOUT"]
    job = _claimed_by("w1", targets.LimitedJob(), heartbeat_age=timeout + 1)  # max_attempts 2
    [first] = recover_abandoned_jobs(timezone.now())
    assert first.outcome == "retry"
    job.refresh_from_db()
    Job.objects.filter(pk=job.pk).update(run_at=timezone.now())
    _claimed_by("w2", heartbeat_age=timeout + 1, job=job)  # the second attempt
    [second] = recover_abandoned_jobs(timezone.now())
    job.refresh_from_db()
    assert (job.status, job.attempts, second.outcome) == ("failed", 2, "failed")
    assert [e["worker"] for e in job.errors] == ["w1", "w2"]
    # The caller runs the hooks (a worker: on its hook thread).
    failure_hooks(second.performable, second.job, second.error, second.outcome)
    assert Event.objects.filter(name="hook:failure").exists()


def test_prune_deletes_only_old_successes(settings):
    settings.JOBS = {**settings.JOBS, "KEEP_SUCCEEDED": timedelta(hours=1)}
    old, recent, failed = (delay(targets.noop)() for _ in range(3))
    with time_machine.travel(LATER, tick=False):
        Job.objects.filter(pk=old.pk).update(
            status="succeeded", finished_at=timezone.now() - timedelta(hours=2)
        )
        Job.objects.filter(pk=recent.pk).update(
            status="succeeded", finished_at=timezone.now() - timedelta(minutes=30)
        )
        Job.objects.filter(pk=failed.pk).update(
            status="failed", finished_at=timezone.now() - timedelta(days=30)
        )
        assert prune_succeeded(timezone.now()) == 1
        assert prune_succeeded(timezone.now()) == 0
    assert set(Job.objects.values_list("pk", flat=True)) == {recent.pk, failed.pk}


def test_claims_we_never_received_are_put_back_uncounted():
    held, lost_reply = delay(targets.noop)(), delay(targets.noop)()
    other_workers = delay(targets.noop)()
    for job, name in ((held, "me"), (lost_reply, "me"), (other_workers, "them")):
        lease = f"{name}-{job.pk}"
        Job.objects.filter(pk=job.pk).update(
            status="running", locked_by=name, lease=lease, attempts=1
        )
    lost = f"me-{lost_reply.pk}"
    assert release_lost_replies([lost], timezone.now()) == 1
    rows = dict(Job.objects.values_list("pk", "status"))
    assert rows == {held.pk: "running", lost_reply.pk: "ready", other_workers.pk: "running"}
    lost_reply.refresh_from_db()
    assert (lost_reply.attempts, lost_reply.locked_by) == (0, "")
