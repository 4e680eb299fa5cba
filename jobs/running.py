"""Run one claimed job: hooks, interruption, retry policy, and its outcome.

Every outcome is written with one UPDATE guarded by the claim's lease token:
it applies only while the row is still running under that very claim. A
worker that stalled and lost its job (to crash recovery, or to an operator's
retry and a new claim) can never overwrite what happened since; a write that
matched nothing changes nothing in memory either.

Job code is a guest: whatever it raises (``SystemExit`` and
``KeyboardInterrupt`` included) is a failed attempt, and whatever state it
leaves its connection in is cleaned up before the outcome is written.
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

from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection
from django.db.models import F
from django.utils import timezone

from . import calls, payload, slots
from .claiming import notify_enqueued
from .conf import jobs_settings
from .connections import connection_broken, discard_open_transaction, transaction_state
from .models import Job, unique_key_kept

logger = logging.getLogger("jobs")

TRACEBACK_LIMIT = 20_000

Clock = Callable[[], datetime]


class JobInterrupted(BaseException):
    """Raised inside a job's thread to stop it. A BaseException, so that a
    job's own ``except Exception`` cannot swallow it."""


class JobTimeout(JobInterrupted):
    """The job ran longer than its max_run_time."""


class WorkerShutdown(JobInterrupted):
    """The worker is stopping and the job must go back to the queue."""


class JobCancelled(JobInterrupted):
    """Cancellation was requested and the job did not stop on its own within
    JOBS["CANCEL_GRACE"]."""


class TransactionLeftOpen(Exception):
    """Recorded when job code returned inside a transaction it did not end:
    its uncommitted writes were rolled back, so the attempt did not succeed."""


# -- interruption -------------------------------------------------------------------


def _raise_in_thread(thread_id: int, exception_class) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id),
        ctypes.py_object(exception_class) if exception_class else ctypes.c_void_p(0),
    )


_running = threading.local()


def cancel_requested() -> bool:
    """Whether cancellation of the job this thread runs was requested.

    Job code that can stop cleanly checks it between steps and returns (or
    raises): the job then ends cancelled, with no retry. One that does not is
    interrupted JOBS["CANCEL_GRACE"] seconds after its worker heard of the
    request. False outside a worker's job.
    """
    interruptible = getattr(_running, "interruptible", None)
    return interruptible is not None and interruptible.cancellation.is_set()


class Interruptible:
    """Lets the worker's supervisor interrupt a thread while, and only while,
    it runs job code (not while it records the outcome). ``cancellation`` is
    set when the worker hears that the job's cancellation was requested."""

    def __init__(self):
        self._lock = threading.Lock()
        self._thread_id = None
        self._pending = False
        self.cancellation = threading.Event()

    def __enter__(self):
        with self._lock:
            self._thread_id = threading.get_ident()
        _running.interruptible = self

    def __exit__(self, *exc_info):
        _running.interruptible = None
        with self._lock:
            if self._pending:  # cancel an interruption not yet delivered
                _raise_in_thread(self._thread_id, None)
            self._thread_id, self._pending = None, False

    @property
    def active(self) -> bool:
        """Whether the thread is in job code now."""
        return self._thread_id is not None

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
        try:
            return hook(now, job.attempts)
        except Exception:
            logger.exception("job=%s reschedule_at failed; using the default backoff", job.pk)
    return now + timedelta(seconds=default_backoff(job.attempts))


# -- what is stored -------------------------------------------------------------------


def storable(text: str) -> str:
    """``text`` without the NUL characters PostgreSQL cannot store in text or JSON."""
    return text.replace("\x00", "\ufffd")


def storable_json(value):
    """A decoded JSON value with every string made storable (keys too)."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list):
        return [storable_json(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): storable_json(item) for key, item in value.items()}
    return value


def describe(exc: BaseException) -> str:
    """``str(exc)``, even for an exception whose ``__str__`` raises."""
    try:
        return str(exc)
    except Exception as error:
        return f"<str() failed: {type(error).__name__}>"


def error_entry(job: Job, exc: BaseException, now) -> dict:
    kind = type(exc)
    try:
        trace = "".join(format_exception(exc))
    except Exception:
        trace = f"{kind.__qualname__}: {describe(exc)}"
    return {
        "exception_class": f"{kind.__module__}.{kind.__qualname__}",
        "message": storable(describe(exc))[:2000],
        "traceback": storable(trace)[-TRACEBACK_LIMIT:],
        "attempt": job.attempts,
        "worker": job.locked_by,
        # With "at", the attempt's run time, shown on the dashboard.
        "started_at": job.locked_at.isoformat() if job.locked_at else None,
        "at": now.isoformat(),
    }


def payload_size(data) -> int:
    return len(json.dumps(data, separators=(",", ":")))


def summary(exc: BaseException) -> str:
    return storable(f"{type(exc).__name__}: {describe(exc)}")[:2000]


# -- outcome ------------------------------------------------------------------------


def record_patience() -> Callable[[], bool]:
    """The default for ``patiently``'s ``give_up``: JOBS["RECORD_PATIENCE"]."""
    deadline = time.monotonic() + jobs_settings().RECORD_PATIENCE
    return lambda: time.monotonic() >= deadline


def patiently(write, what, give_up: Callable[[], bool] | None = None):
    """Run ``write()``, retrying connection errors with backoff until it
    succeeds or ``give_up()`` says so: an outcome must not be lost to a
    database restart. Returns (result, whether an earlier try may have
    committed with its reply lost)."""
    give_up = give_up or record_patience()
    delay, uncertain = 0.25, False
    while True:
        try:
            return write(), uncertain
        except DatabaseError as exc:
            # A connection cut mid-reply may surface as a plain DatabaseError.
            lost_connection = isinstance(exc, OperationalError | InterfaceError) or (
                connection_broken()
            )
            if not lost_connection or give_up():
                raise
            uncertain = True
            logger.warning("%s: database unavailable (%s); retrying in %.2fs", what, exc, delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def holds(job: Job):
    """The job's row, while it still runs under the claim ``job`` was given."""
    return Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, lease=job.lease)


def record(job: Job, now, give_up=None, **fields) -> bool:
    """Apply ``fields`` if we still hold the job's claim; False if it was lost.

    A write whose reply a dropped connection lost may have committed: after
    a retry that matched nothing, the row tells (same lease, the status we
    wrote). Expressions in ``fields`` (F objects) are not copied to ``job``.
    A job that leaves its concurrency slot (any status but running) lets the
    next blocked job of its key have it.
    """
    fields["updated_at"] = now
    if job.unique_key is not None and fields["status"] in Job.WAITING:
        fields["unique_key"] = unique_key_kept()

    def write():
        try:
            return holds(job).update(**fields)
        except IntegrityError:
            if "unique_key" not in fields:
                raise
            # A job took the key between our check and our write (PostgreSQL).
            fields["unique_key"] = None
            return holds(job).update(**fields)

    updated, uncertain = patiently(write, f"job={job.pk}", give_up)
    if not updated and uncertain:
        updated = Job.objects.filter(pk=job.pk, lease=job.lease, status=fields["status"]).exists()
    if updated:
        for name, value in fields.items():
            if not hasattr(value, "resolve_expression"):
                setattr(job, name, value)
        if job.concurrency_key is not None:
            slots.unblock_quietly(Job, [job.concurrency_key])
    return bool(updated)


def record_success(job: Job, now, result, give_up=None) -> bool:
    """The outcome of a job that succeeded (a worker batches these: jobs.finishing)."""
    return record(job, now, give_up, status=Job.Status.SUCCEEDED, result=result, finished_at=now)


def release(job: Job, now, give_up=None, delay: float = 0) -> bool:
    """Put a job back untouched, as if this attempt never started, and wake
    workers; due at once, or ``delay`` seconds later."""
    status = Job.Status.SCHEDULED if delay else Job.waiting_status(now, now, job.concurrency_key)
    fields = {"run_at": now + timedelta(seconds=delay)} if delay else {}
    released = record(
        job,
        now,
        give_up,
        status=status,
        attempts=job.attempts - 1,
        locked_by="",
        locked_at=None,
        **fields,
    )
    if released and not delay:
        notify_enqueued([job.queue])
    return released


def fail_attempt(
    job: Job,
    exc: BaseException,
    performable=None,
    *,
    now,
    permanent=False,
    retry_now=False,
    give_up=None,
) -> str:
    """Record a failed attempt: retry later (at once with ``retry_now``), or
    give up for good; a job whose cancellation was requested ends cancelled.
    Returns the outcome: "retry", "failed", "cancelled" or "lost".

    Runs no hook: the caller does, on a thread of its choosing. ``errors``
    keeps the latest Job.ERRORS_KEPT attempts; ``error_count`` counts all.
    """
    errors = [*_recorded_errors(job, give_up)[-(Job.ERRORS_KEPT - 1) :], error_entry(job, exc, now)]
    common = {"last_error": summary(exc), "errors": errors, "error_count": F("error_count") + 1}
    if permanent or job.attempts >= max_attempts_for(job):
        recorded = record(
            job, now, give_up, status=Job.Status.FAILED, failed_at=now, finished_at=now, **common
        )
        return "failed" if recorded else "lost"
    if job.cancel_requested_at is not None:
        recorded = record(job, now, give_up, status=Job.Status.CANCELLED, finished_at=now, **common)
        return "cancelled" if recorded else "lost"
    when = now if retry_now else retry_at(performable, job, now)
    status = Job.waiting_status(when, now, job.concurrency_key)
    recorded = record(job, now, give_up, status=status, run_at=when, **common)
    if recorded and status == Job.Status.READY:
        notify_enqueued([job.queue])
    return "retry" if recorded else "lost"


def cancel(job: Job, now, give_up=None, error: BaseException | None = None) -> str:
    """End a claimed job as cancelled, as its cancellation asked: no retry.
    Returns "cancelled", or "lost" if the claim was. ``error``: how its
    attempt ended, if it ran (kept with the other errors)."""
    fields = {"last_error": "Cancelled on request"}
    if error is not None and not isinstance(error, JobCancelled):
        fields["last_error"] = f"Cancelled on request; the attempt ended with {summary(error)}"
    if error is not None:
        entry = error_entry(job, error, now)
        kept = _recorded_errors(job, give_up)[-(Job.ERRORS_KEPT - 1) :]
        fields |= {"errors": [*kept, entry], "error_count": F("error_count") + 1}
    recorded = record(job, now, give_up, status=Job.Status.CANCELLED, finished_at=now, **fields)
    return "cancelled" if recorded else "lost"


def interruptible_cancelled(interruptible) -> bool:
    cancellation = getattr(interruptible, "cancellation", None)
    return cancellation is not None and cancellation.is_set()


def _recorded_errors(job: Job, give_up) -> list:
    """The job's kept errors; claims leave them out, so read them now, with
    the patience of any outcome write."""
    if "errors" in job.get_deferred_fields():
        rows = Job.objects.filter(pk=job.pk).values_list("errors", flat=True)
        job.errors = patiently(lambda: rows.first() or [], f"job={job.pk}", give_up)[0]
    return job.errors


def call_hook(performable, name, *args) -> None:
    """Run an optional hook; a hook that raises is logged, never fatal."""
    hook = getattr(performable, name, None)
    if not callable(hook):
        return
    try:
        hook(*args)
    except Exception:
        logger.exception("job hook %s failed", name)


def failure_hooks(performable, job: Job, exc: BaseException, outcome: str) -> None:
    """The hooks of a failed attempt, in delayed_job's order: error, failure
    (given up for good), after."""
    call_hook(performable, "error", job, exc)
    if outcome == "failed":
        call_hook(performable, "failure", job)
    call_hook(performable, "after", job)


def _encode_result(job, value):
    try:
        return storable_json(payload.encode(value, "return value"))
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
    give_up: Callable[[], bool] | None = None,
) -> str:
    """Run a job this worker has claimed and record what happened.

    ``clock`` gives the times written to the row (a worker passes one set by
    the database's clock); ``record_succeeded(job, now, result)`` writes a
    success (a worker passes its batching SuccessRecorder); ``give_up()``
    says when to stop retrying an outcome write while the database is away
    (default: JOBS["RECORD_PATIENCE"]). Returns the outcome: "succeeded",
    "retry", "failed", "released" (put back, the attempt not counted) or
    "lost" (the claim was taken over meanwhile).
    """
    started = time.monotonic()
    attempt = _Attempt()
    if job.cancel_requested_at is not None or (
        interruptible is not None and interruptible.cancellation.is_set()
    ):
        # Asked to stop before it could start (read ahead, or retried after a
        # failure the request came too late for): it never runs.
        outcome = cancel(job, clock(), give_up)
        log_outcome(job, outcome, started)
        return outcome
    try:
        attempt.performable = load_payload(job)
    except payload.DeserializationError as exc:
        outcome = fail_attempt(job, exc, now=clock(), permanent=True, give_up=give_up)
    except Exception as exc:  # e.g. the database was away while re-fetching
        outcome = fail_attempt(job, exc, now=clock(), give_up=give_up)
    else:
        outcome = _run_performable(
            job, attempt, interruptible or nullcontext(), clock, record_succeeded, give_up
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
    return calls.load(job.payload)


def _run_performable(job, attempt, interruptible, clock, record_succeeded, give_up) -> str:
    performable = attempt.performable
    error = None
    before = transaction_state()
    try:
        _perform(job, attempt, interruptible)
    except JobInterrupted as exc:
        if not attempt.completed:  # else it landed after the job was done: ignore it
            error = exc
    except BaseException as exc:  # job code's SystemExit, KeyboardInterrupt... too
        error = exc
    if discard_open_transaction(before) and error is None:
        error = TransactionLeftOpen(
            "the job returned inside a transaction it did not end (autocommit off, or an "
            "atomic block left open); its uncommitted writes were rolled back"
        )
    if isinstance(error, JobCancelled) or interruptible_cancelled(interruptible):
        # Once its worker heard the request, the job ends cancelled however
        # it ended: returning early is how a job stops when asked to.
        outcome = cancel(job, clock(), give_up, error)
        if outcome != "lost":
            call_hook(performable, "after", job)
        return outcome
    if isinstance(error, WorkerShutdown):
        call_hook(performable, "after", job)
        return "released" if release(job, clock(), give_up) else "lost"
    if isinstance(error, JobTimeout):
        error = JobTimeout(f"exceeded max_run_time of {max_run_time_for(job):g} s")
    if error is not None:
        outcome = fail_attempt(job, error, performable, now=clock(), give_up=give_up)
        if outcome != "lost":
            failure_hooks(performable, job, error, outcome)
        return outcome
    recorded = record_succeeded(job, clock(), _encode_result(job, attempt.result))
    if recorded:
        call_hook(performable, "after", job)
    return "succeeded" if recorded else "lost"


def log_outcome(job: Job, outcome: str, started: float) -> None:
    level = logging.INFO if outcome in {"succeeded", "released", "cancelled"} else logging.WARNING
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
    performable = calls.load(job.payload)
    now = timezone.now()
    job.status, job.attempts, job.locked_at, job.locked_by = Job.Status.RUNNING, 1, now, "inline"
    try:
        hook = getattr(performable, "before", None)
        if callable(hook):
            hook(job)
        result = performable.perform()
    except Exception as exc:
        job.status, job.last_error = Job.Status.FAILED, summary(exc)
        failure_hooks(performable, job, exc, "failed")
        raise
    job.status, job.result, job.finished_at = Job.Status.SUCCEEDED, _encode_result(job, result), now
    job.save()
    call_hook(performable, "success", job)
    call_hook(performable, "after", job)
    return job
