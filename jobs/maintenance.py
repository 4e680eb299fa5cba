"""Housekeeping every worker does between jobs: crash recovery and pruning."""

import logging
from datetime import datetime, timedelta

from django.db.models import F, Q

from . import payload
from .conf import jobs_settings
from .models import Job, Worker
from .running import fail_attempt

logger = logging.getLogger("jobs")

PRUNE_BATCH = 1000


class WorkerLost(Exception):
    """Recorded on a job whose worker stopped heartbeating while running it."""


def recover_abandoned_jobs(now: datetime) -> int:
    """Give back the jobs of workers that stopped heartbeating.

    The lost attempt counts (it already did, at claim), so a job that kills
    its worker every time ends up failed instead of looping forever. Returns
    how many jobs were recovered. ``now`` is the database's time, as the
    worker's DatabaseClock tells it.
    """
    cutoff = now - timedelta(seconds=jobs_settings().HEARTBEAT_TIMEOUT)
    dead = list(Worker.objects.filter(last_heartbeat_at__lt=cutoff).values_list("name", flat=True))
    live = Worker.objects.filter(last_heartbeat_at__gte=cutoff).values("name")
    # Jobs of dead workers, and of workers with no row at all (deleted by
    # hand, or never registered) once the claim is older than the timeout.
    abandoned = Job.objects.filter(status=Job.Status.RUNNING).filter(
        Q(locked_by__in=dead) | (~Q(locked_by__in=live) & Q(locked_at__lt=cutoff))
    )
    recovered = 0
    for job in abandoned:
        error = WorkerLost(
            f"worker {job.locked_by} stopped heartbeating during attempt {job.attempts}"
        )
        try:
            performable = payload.load(job.payload)
        except Exception:
            performable = None  # still recoverable; only its hooks are lost
        # Back at once: a crash is more often the platform's doing than the job's.
        outcome = fail_attempt(job, error, performable, now=now, retry_now=True)
        if outcome != "lost":
            recovered += 1
            logger.warning(
                "job=%s name=%s recovered from %s outcome=%s",
                job.pk,
                job.name,
                job.locked_by,
                outcome,
            )
    if dead:
        Worker.objects.filter(name__in=dead, last_heartbeat_at__lt=cutoff).delete()
    return recovered


def release_unknown_claims(worker_name: str, held: list[int], now: datetime) -> int:
    """Put back jobs claimed in our name that we do not hold.

    A claim can commit on the server while its reply is lost to a dropped
    connection: the jobs are ours in the table but no thread of ours runs
    them. Nothing ran, so the attempt is not counted.
    """
    released = (
        Job.objects.filter(status=Job.Status.RUNNING, locked_by=worker_name)
        .exclude(pk__in=held)
        .update(
            status=Job.Status.READY,
            attempts=F("attempts") - 1,
            locked_by="",
            locked_at=None,
            updated_at=now,
        )
    )
    if released:
        logger.warning("worker=%s released %s claims it never received", worker_name, released)
    return released


def prune_succeeded(now: datetime) -> int:
    """Delete succeeded jobs older than KEEP_SUCCEEDED, a batch at a time."""
    cutoff = now - jobs_settings().KEEP_SUCCEEDED
    old = Job.objects.filter(status=Job.Status.SUCCEEDED, finished_at__lt=cutoff)
    ids = list(old.values_list("id", flat=True)[:PRUNE_BATCH])
    if not ids:
        return 0
    deleted, _ = Job.objects.filter(id__in=ids).delete()
    return deleted
