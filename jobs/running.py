"""Run one claimed job: hooks, interruption, retry policy, and its outcome.

Every outcome is written with one guarded UPDATE: it applies only while the
row is still running under the claim we hold (same worker, same attempt). A
worker that stalled and lost its job to crash recovery can therefore never
overwrite what the worker that took over recorded.
"""

import ctypes
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from traceback import format_exception

from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from . import payload
from .conf import jobs_settings
from .models import Job

logger = logging.getLogger("jobs")

TRACEBACK_LIMIT = 20_000

Clock = Callable[[], datetime]
#: Seconds to keep retrying an outcome write while the database is away.
RECORD_PATIENCE = 120.0


class JobInterrupted(BaseException):
    """Raised inside a job's thread to stop it. A BaseException, so that a
    job's own ``except Exception`` cannot swallow it."""


class JobTimeout(JobInterrupted):
    """The job ran longer than its max_run_time."""


class WorkerShutdown(JobInterrupted):
    """The worker is stopping and the job must go back to the queue."""


# -- interruption -------------------------------------------------------------------


def _raise_in_thread(thread_id: int, exception_class) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id),
        ctypes.py_object(exception_class) if exception_class else ctypes.c_void_p(0),
    )


class Interruptible:
    """Lets the worker's supervisor interrupt a thread while, and only while,
    it runs job code (not while it records the outcome)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._thread_id = None
        self._pending = False

    def __enter__(self):
        with self._lock:
            self._thread_id = threading.get_ident()

    def __exit__(self, *exc_info):
        with self._lock:
            if self._pending:  # cancel an interruption not yet delivered
                _raise_in_thread(self._thread_id, None)
            self._thread_id, self._pending = None, False

    def interrupt(self, exception_class) -> bool:
        with self._lock:
            if self._thread_id is None:
                return False
            _raise_in_thread(self._thread_id, exception_class)
            self._pending = True
            return True


# -- policy -------------------------------------------------------------------------


def max_attempts_for(job: Job) -> int:
    return job.max_attempts or jobs_settings().MAX_ATTEMPTS


def max_run_time_for(job: Job) -> float:
    return job.max_run_time or jobs_settings().MAX_RUN_TIME


def default_backoff(attempts: int) -> float:
    """delayed_job's schedule, attempts**4 + 5 seconds, plus up to 10% jitter
    so that jobs that failed together do not all retry in the same second."""
    base = attempts**4 + 5
    return base + random.uniform(0, base / 10)


def retry_at(performable, job: Job, now):
    """When to try again: the job's reschedule_at(now, attempts), or the backoff."""
    hook = getattr(performable, "reschedule_at", None)
    if callable(hook):
        return hook(now, job.attempts)
    return now + timedelta(seconds=default_backoff(job.attempts))


def error_entry(job: Job, exc: BaseException, now) -> dict:
    kind = type(exc)
    return {
        "exception_class": f"{kind.__module__}.{kind.__qualname__}",
        "message": str(exc)[:2000],
        "traceback": "".join(format_exception(exc))[-TRACEBACK_LIMIT:],
        "attempt": job.attempts,
        "worker": job.locked_by,
        "at": now.isoformat(),
    }


def payload_size(data) -> int:
    return len(json.dumps(data, separators=(",", ":")))


def summary(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


# -- outcome ------------------------------------------------------------------------


def patiently(write, what):
    """Run ``write()``, retrying connection errors with backoff for up to
    RECORD_PATIENCE seconds: an outcome must not be lost to a database restart."""
    deadline, delay = time.monotonic() + RECORD_PATIENCE, 0.25
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("%s: database unavailable (%s); retrying in %.2fs", what, exc, delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def record(job: Job, now, **fields) -> bool:
    """Apply ``fields`` if we still hold the job's claim; False if it was lost."""
    fields["updated_at"] = now
    claim = Job.objects.filter(
        pk=job.pk, status=Job.Status.RUNNING, locked_by=job.locked_by, attempts=job.attempts
    )
    updated = patiently(lambda: claim.update(**fields), f"job={job.pk}")
    for name, value in fields.items():
        setattr(job, name, value)
    return bool(updated)


def record_success(job: Job, now, result) -> bool:
    """The outcome of a job that succeeded (a worker batches these: jobs.finishing)."""
    return record(job, now, status=Job.Status.SUCCEEDED, result=result, finished_at=now)


def release(job: Job, now) -> bool:
    """Put a job back untouched, as if this attempt never started."""
    return record(
        job, now, status=Job.Status.READY, attempts=job.attempts - 1, locked_by="", locked_at=None
    )


def fail_attempt(
    job: Job, exc: BaseException, performable=None, *, now, permanent=False, retry_now=False
) -> str:
    """Record a failed attempt: retry later (at once with ``retry_now``), or
    give up for good. Returns the outcome."""
    errors = [*job.errors, error_entry(job, exc, now)]
    if permanent or job.attempts >= max_attempts_for(job):
        recorded = record(
            job,
            now,
            status=Job.Status.FAILED,
            last_error=summary(exc),
            errors=errors,
            failed_at=now,
            finished_at=now,
        )
        if recorded and performable is not None:
            _after_hook(performable, "failure", job)
        return "failed" if recorded else "lost"
    when = now if retry_now else retry_at(performable, job, now)
    recorded = record(
        job,
        now,
        status=Job.waiting_status(when, now),
        last_error=summary(exc),
        errors=errors,
        run_at=when,
    )
    return "retry" if recorded else "lost"


def _after_hook(performable, name, *args) -> None:
    """Hooks that run after the outcome is known must not change it."""
    hook = getattr(performable, name, None)
    if not callable(hook):
        return
    try:
        hook(*args)
    except Exception:
        logger.exception("job hook %s failed", name)


def _encode_result(job, value):
    try:
        return payload.encode(value, "return value")
    except (TypeError, ValueError) as exc:
        logger.warning("job=%s result not stored: %s", job.pk, exc)
        return None


# -- running ------------------------------------------------------------------------


@dataclass
class _Attempt:
    performable: object = None
    completed: bool = False
    result: object = None


def _perform(job: Job, attempt: _Attempt, interruptible) -> None:
    performable = attempt.performable
    with interruptible:
        hook = getattr(performable, "before", None)
        if callable(hook):
            hook(job)
        attempt.result = performable.perform()
        hook = getattr(performable, "success", None)
        if callable(hook):
            hook(job)
        attempt.completed = True


def run_claimed_job(
    job: Job,
    interruptible: Interruptible | None = None,
    clock: Clock = timezone.now,
    record_succeeded=record_success,
) -> str:
    """Run a job this worker has claimed and record what happened.

    ``clock`` gives the times written to the row (a worker passes one set by
    the database's clock); ``record_succeeded(job, now, result)`` writes a
    success (a worker passes its batching SuccessRecorder). Returns the
    outcome: "succeeded", "retry", "failed", "released" (put back, the attempt
    not counted) or "lost" (the claim was taken over meanwhile).
    """
    started = time.monotonic()
    attempt = _Attempt()
    try:
        attempt.performable = load_payload(job)
    except payload.DeserializationError as exc:
        outcome = fail_attempt(job, exc, now=clock(), permanent=True)
    except Exception as exc:  # e.g. the database was away while re-fetching
        outcome = fail_attempt(job, exc, now=clock())
    else:
        outcome = _run_performable(
            job, attempt, interruptible or nullcontext(), clock, record_succeeded
        )
    log_outcome(job, outcome, started)
    return outcome


def load_payload(job: Job):
    """The job's performable; oversized or unreadable payloads never run."""
    limit = jobs_settings().MAX_PAYLOAD_BYTES
    size = payload_size(job.payload)
    if size > limit:
        raise payload.DeserializationError(
            f"Payload of {size:,} bytes exceeds JOBS['MAX_PAYLOAD_BYTES'] ({limit:,})."
        )
    return payload.load(job.payload)


def _run_performable(job, attempt, interruptible, clock, record_succeeded) -> str:
    performable = attempt.performable
    try:
        _perform(job, attempt, interruptible)
    except WorkerShutdown:
        if not attempt.completed:
            _after_hook(performable, "after", job)
            return "released" if release(job, clock()) else "lost"
    except JobTimeout:
        if not attempt.completed:
            exc = JobTimeout(f"exceeded max_run_time of {max_run_time_for(job):g} s")
            _after_hook(performable, "error", job, exc)
            outcome = fail_attempt(job, exc, performable, now=clock())
            _after_hook(performable, "after", job)
            return outcome
    except Exception as exc:
        _after_hook(performable, "error", job, exc)
        outcome = fail_attempt(job, exc, performable, now=clock())
        _after_hook(performable, "after", job)
        return outcome
    recorded = record_succeeded(job, clock(), _encode_result(job, attempt.result))
    _after_hook(performable, "after", job)
    return "succeeded" if recorded else "lost"


def log_outcome(job: Job, outcome: str, started: float) -> None:
    level = logging.INFO if outcome in {"succeeded", "released"} else logging.WARNING
    logger.log(
        level,
        "job=%s name=%s queue=%s attempt=%s outcome=%s duration_ms=%d%s",
        job.pk,
        job.name,
        job.queue,
        job.attempts,
        outcome,
        (time.monotonic() - started) * 1000,
        f" error={job.last_error!r}" if outcome in {"retry", "failed"} else "",
    )


def run_inline(job: Job) -> Job:
    """DELAY_JOBS off: run an unsaved job now, in the caller, with its hooks.

    Exceptions propagate to the caller, as they would from a direct call, and
    nothing is saved; a success is saved as a succeeded row, so callers that
    keep the returned Job (or a TaskResult id) work as with a worker.
    """
    performable = payload.load(job.payload)
    now = timezone.now()
    job.status, job.attempts, job.locked_at, job.locked_by = Job.Status.RUNNING, 1, now, "inline"
    try:
        hook = getattr(performable, "before", None)
        if callable(hook):
            hook(job)
        result = performable.perform()
    except Exception as exc:
        job.status, job.last_error = Job.Status.FAILED, summary(exc)
        _after_hook(performable, "error", job, exc)
        _after_hook(performable, "failure", job)
        _after_hook(performable, "after", job)
        raise
    job.status, job.result, job.finished_at = Job.Status.SUCCEEDED, _encode_result(job, result), now
    job.save()
    _after_hook(performable, "success", job)
    _after_hook(performable, "after", job)
    return job
