"""Helpers for tests of code that enqueues jobs."""

from dataclasses import dataclass

from django.utils import timezone

from . import slots
from .claiming import claim_due_jobs, promote_due_jobs
from .models import Job
from .running import run_claimed_job
from .worker import worker_name


@dataclass
class WorkOffResult:
    succeeded: int = 0
    failed: int = 0  # failed attempts, whether retried later or given up
    outcomes: tuple = ()


def work_off(*, queues=(), min_priority=None, max_priority=None, limit=10_000) -> WorkOffResult:
    """Run every due job now, one at a time, in this thread.

    Unlike ``manage.py jobs workoff`` it sees the caller's uncommitted data
    (a test inside a transaction) and follows time-machine's clock. It does
    not enforce max_run_time; real workers do.
    """
    name = f"testing:{worker_name()}"
    outcomes = []
    while len(outcomes) < limit:
        promote_due_jobs(now=timezone.now())
        # Inside a test's transaction, enqueues never commit, so the slots
        # they would fill on commit are filled here.
        slots.unblock(Job)
        jobs = claim_due_jobs(
            worker_name=name,
            limit=1,
            now=timezone.now(),
            queues=queues,
            min_priority=min_priority,
            max_priority=max_priority,
        )
        if not jobs:
            break
        outcomes.append(run_claimed_job(jobs[0], clock=timezone.now))
    return WorkOffResult(
        succeeded=outcomes.count("succeeded"),
        failed=sum(outcome in {"retry", "failed"} for outcome in outcomes),
        outcomes=tuple(outcomes),
    )
