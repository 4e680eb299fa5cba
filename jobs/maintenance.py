"""Housekeeping every worker does between jobs: crash recovery and pruning.

A worker is presumed dead when its heartbeat is older than HEARTBEAT_TIMEOUT
by the database's clock *and* nothing shows its process alive. On PostgreSQL
a live worker holds a session advisory lock on a direct connection
(``Worker.lock_key``): the server drops it when the process dies, but keeps
it while a job holds the process's GIL in one long C call and no Python
thread, heartbeat included, can run. On SQLite, which one machine shares,
the process id tells.
"""

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connections

from . import calls
from .clock import database_now
from .conf import jobs_settings
from .models import Job, Worker
from .running import fail_attempt, release

logger = logging.getLogger("jobs")

PRUNE_BATCH = 1000

#: pg_locks shows a one-key (bigint) advisory lock as two 32-bit halves.
_HELD_LOCKS_SQL = """
SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 1 AND granted
"""


class WorkerLost(Exception):
    """Recorded on a job whose worker died (or went silent) while running it."""


@dataclass
class Recovered:
    """A job taken back from a dead worker, for its hooks to run elsewhere."""

    job: Job
    performable: object
    error: WorkerLost
    outcome: str


def _held_advisory_locks(using: str) -> set[int]:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return set()
    with connection.cursor() as cursor:
        cursor.execute(_HELD_LOCKS_SQL)
        return {key for (key,) in cursor.fetchall()}


def _process_alive(worker: Worker, held_locks: set[int], vendor: str) -> bool:
    if worker.lock_key is not None:
        return worker.lock_key in held_locks
    if vendor != "sqlite" or worker.hostname != socket.gethostname():
        return False
    if worker.pid == os.getpid():
        return False  # a previous life of this process id (a restarted container)
    try:
        os.kill(worker.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_workers(now: datetime, using: str = "default") -> list[str]:
    """Workers silent past HEARTBEAT_TIMEOUT whose process is not provably alive."""
    cutoff = now - timedelta(seconds=jobs_settings().HEARTBEAT_TIMEOUT)
    silent = list(Worker.objects.using(using).filter(last_heartbeat_at__lt=cutoff))
    if not silent:
        return []
    held = _held_advisory_locks(using) if any(w.lock_key is not None for w in silent) else set()
    vendor = connections[using].vendor
    return [w.name for w in silent if not _process_alive(w, held, vendor)]


def recover_abandoned_jobs(
    now: datetime | None = None, using="default", give_up=None
) -> list[Recovered]:
    """Give back the jobs of dead workers; returns them, for their hooks.

    ``now``: the database's time (read from it when None). The lost attempt
    counts (it did at claim), so a job that kills its worker every time ends
    up failed instead of looping forever. Each write is guarded by the dead
    claim's lease, so two workers recovering at once take each job once.
    The caller runs the hooks (error, failure, after) where a slow hook
    cannot hold up its heartbeat. ``give_up``: as for ``running.patiently``.
    """
    now = now or database_now(using)
    cutoff = now - timedelta(seconds=jobs_settings().HEARTBEAT_TIMEOUT)
    dead = dead_workers(now, using)
    registered = Worker.objects.using(using).values("name")
    # Jobs of dead workers, and of workers with no row at all (deleted by
    # hand, or presumed dead earlier) once the claim is older than the timeout.
    abandoned = Job.objects.using(using).filter(status=Job.Status.RUNNING)
    abandoned = abandoned.filter(locked_by__in=dead) | abandoned.exclude(
        locked_by__in=registered
    ).filter(locked_at__lt=cutoff)
    recovered = []
    for job in abandoned:
        error = WorkerLost(f"worker {job.locked_by} died during attempt {job.attempts}")
        try:
            performable = calls.load(job.payload)
        except Exception:
            performable = None  # still recoverable; only its hooks are lost
        # Back at once: a crash is more often the platform's doing than the job's.
        outcome = fail_attempt(job, error, performable, now=now, retry_now=True, give_up=give_up)
        if outcome != "lost":
            recovered.append(Recovered(job, performable, error, outcome))
            logger.warning(
                "job=%s name=%s recovered from %s outcome=%s",
                job.pk,
                job.name,
                job.locked_by,
                outcome,
            )
    if dead:
        Worker.objects.using(using).filter(name__in=dead, last_heartbeat_at__lt=cutoff).delete()
    return recovered


def release_lost_replies(leases, now: datetime) -> int:
    """Put back the jobs of claims whose reply never came.

    A claim can commit on the server while its reply is lost to a dropped
    connection: the jobs are ours in the table but no thread of ours has
    them. The claimant knows each claim's lease before it sends it, so it
    releases exactly those. Nothing ran, so the attempt is not counted.
    """
    leases = list(leases)
    if not leases:
        return 0
    released = 0
    for job in Job.objects.filter(status=Job.Status.RUNNING, lease__in=leases):
        if release(job, now):  # gives back the attempt the claim counted
            released += 1
    if released:
        logger.warning("released %s jobs whose claim reply was lost", released)
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
