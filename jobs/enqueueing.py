"""Putting work on the queue: enqueue(), delay(), handle_asynchronously, Mailer.

Everything here runs in the caller's process and transaction: a job enqueued
inside ``transaction.atomic()`` exists only if that transaction commits. Bad
input fails here, at the call, never later in the worker.
"""

import functools
import inspect
import json
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, models, transaction
from django.utils import timezone

from . import payload, slots
from .conf import QUEUE_NAME_MAX_LENGTH, jobs_settings
from .models import Job
from .running import payload_size, run_inline

PRIORITY_RANGE = range(-32768, 32768)  # SmallIntegerField


class Mailer:
    """Base class for mailers whose methods build messages.

    Each public method returns an ``EmailMessage`` (or
    ``EmailMultiAlternatives``); calling it directly only builds the message.
    ``delay(MyMailer).welcome(user)`` builds *and* sends it in the worker,
    through the ``MAILERS`` alias named by ``mailer``.
    """

    mailer = "default"


# -- options ------------------------------------------------------------------


def _evaluate(option, instance):
    """A value, or a callable evaluated now (given the instance if it takes one)."""
    if not callable(option):
        return option
    try:
        wants_instance = bool(inspect.signature(option).parameters)
    except (TypeError, ValueError):
        wants_instance = False
    return option(instance) if wants_instance else option()


KEY_MAX_LENGTH = 255  # the key columns' max_length


def _key(value, option):
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > KEY_MAX_LENGTH:
        raise ValueError(
            f"{option} must be a non-empty string of at most {KEY_MAX_LENGTH} characters, "
            f"not {value!r}."
        )
    return value


def _limit(key, limit):
    if limit is None:
        return 1 if key is not None else None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"concurrency_limit must be a positive integer, not {limit!r}.")
    if key is None:
        raise ValueError("concurrency_limit needs a concurrency_key to limit.")
    return limit


#: Options whose callables receive the call's arguments (and give keys).
KEY_OPTIONS = ("unique_key", "concurrency_key", "concurrency_limit")


def limits(*, unique_key=None, concurrency_key=None, concurrency_limit=None):
    """Declare a function's keys for every way it is queued: ``delay(f)``,
    ``handle_asynchronously`` and ``@task`` (put ``@limits`` under ``@task``).

    ``unique_key``: while a job with this key is ready, scheduled or blocked,
    queueing another returns that job instead. ``concurrency_key`` and
    ``concurrency_limit`` (default 1): at most that many jobs with the key
    ready or running at once. Each may be a value or a callable given the
    call's arguments (after the instance, for a method).
    """
    declared = {
        "unique_key": unique_key,
        "concurrency_key": concurrency_key,
        "concurrency_limit": concurrency_limit,
    }

    def decorate(func):
        func.jobs_limits = {name: value for name, value in declared.items() if value is not None}
        return func

    return decorate


def call_keys(options: dict, args, kwargs, instance=None) -> dict:
    """The key options for one call: callables are given its arguments."""
    keys = {}
    for name in KEY_OPTIONS:
        value = options.get(name)
        if callable(value):
            value = (
                value(instance, *args, **kwargs) if instance is not None else value(*args, **kwargs)
            )
        keys[name] = value
    return keys


def _with_limits(options: dict, target) -> dict:
    """``options``, with the keys ``@limits`` declared on ``target`` where
    the caller gave none."""
    declared = getattr(target, "jobs_limits", None) or {}
    return {**options, **{k: v for k, v in declared.items() if options.get(k) is None}}


def _job_row(
    call,
    name,
    *,
    priority,
    run_at,
    queue,
    max_attempts=None,
    max_run_time=None,
    unique_key=None,
    concurrency_key=None,
    concurrency_limit=None,
):
    """A validated, unsaved Job for ``call`` (an encoded payload dict)."""
    config = jobs_settings()
    unique_key = _key(unique_key, "unique_key")
    concurrency_key = _key(concurrency_key, "concurrency_key")
    concurrency_limit = _limit(concurrency_key, concurrency_limit)
    priority = config.DEFAULT_PRIORITY if priority is None else priority
    if (
        isinstance(priority, bool)
        or not isinstance(priority, int)
        or priority not in PRIORITY_RANGE
    ):
        raise ValueError(f"priority must be an integer from -32768 to 32767, not {priority!r}.")
    queue = config.DEFAULT_QUEUE if queue is None else queue
    if not isinstance(queue, str) or not queue or len(queue) > QUEUE_NAME_MAX_LENGTH:
        raise ValueError(
            f"queue must be a non-empty string of at most {QUEUE_NAME_MAX_LENGTH} characters, "
            f"not {queue!r}."
        )
    now = timezone.now()
    if run_at is None:
        run_at = now
    elif isinstance(run_at, timedelta):
        run_at = now + run_at
    elif not isinstance(run_at, datetime) or (settings.USE_TZ and timezone.is_naive(run_at)):
        raise ValueError(f"run_at must be an aware datetime or a timedelta, not {run_at!r}.")
    elif not settings.USE_TZ and timezone.is_aware(run_at):
        # Without time zones the table holds local times, as Django stores them.
        run_at = timezone.make_naive(run_at)
    if max_attempts is not None and (not isinstance(max_attempts, int) or max_attempts < 1):
        raise ValueError(f"max_attempts must be a positive integer, not {max_attempts!r}.")
    if max_run_time is not None:
        if isinstance(max_run_time, timedelta):
            max_run_time = max_run_time.total_seconds()
        if not isinstance(max_run_time, int | float) or max_run_time <= 0:
            raise ValueError(f"max_run_time must be positive seconds, not {max_run_time!r}.")
    data = {"v": payload.FORMAT_VERSION, **call}
    size, limit = payload_size(data), config.MAX_PAYLOAD_BYTES
    if size > limit:
        raise ValueError(
            f"{name}: the job's arguments take {size:,} bytes as JSON, over "
            f"JOBS['MAX_PAYLOAD_BYTES'] ({limit:,}). Store big data elsewhere and pass its id."
        )
    values = {
        "id": None,
        "name": name[:255],
        "queue": queue,
        "priority": priority,
        "payload": data,
        "status": Job.Status.READY,
        "attempts": 0,
        "max_attempts": max_attempts,
        "max_run_time": max_run_time,
        "run_at": run_at,
        "locked_at": None,
        "locked_by": "",
        "lease": "",
        "last_error": "",
        "errors": [],
        "error_count": 0,
        "unique_key": unique_key,
        "concurrency_key": concurrency_key,
        "concurrency_limit": concurrency_limit,
        "cancel_requested_at": None,
        "result": None,
        "failed_at": None,
        "finished_at": None,
        "created_at": now,
        "updated_at": now,
    }
    # Every field by position: Django's fast path, three times quicker than
    # keywords, which counts when enqueue_many builds a hundred thousand.
    return Job(*[values[f.attname] for f in Job._meta.concrete_fields])


def _attribute(obj, name):
    """A job object's optional attribute or zero-argument method."""
    value = getattr(obj, name, None)
    return value() if callable(value) else value


def _settle_status(job):
    """Ready, scheduled or blocked (for a concurrency slot), by run_at as it
    stands after the job's enqueue hook."""
    job.status = Job.waiting_status(job.run_at, job.created_at, job.concurrency_key)
    return job


def _submit(job):
    """Save ``job`` (or, with DELAY_JOBS off, run it at once) and return it;
    with a unique key another job waits with, return that one instead."""
    if not jobs_settings().DELAY_JOBS:
        return run_inline(job)
    _settle_status(job)
    if job.unique_key is not None:
        job = _insert_unique(job)
    else:
        _insert_one(job)  # on PostgreSQL a trigger NOTIFYs workers (migration 0003)
    _fill_slot_on_commit(job)
    return job


@functools.cache
def _single_insert(vendor: str) -> tuple[str, tuple]:
    """The one-row INSERT's SQL, and how each column's value is adapted."""
    ops = connection.ops
    fields = tuple(f for f in Job._meta.concrete_fields if not f.primary_key)
    sql = "INSERT INTO {} ({}) VALUES ({}) RETURNING {}".format(
        ops.quote_name(Job._meta.db_table),
        ", ".join(ops.quote_name(f.column) for f in fields),
        ", ".join(["%s"] * len(fields)),
        ops.quote_name(Job._meta.pk.column),
    )
    return sql, fields


def _insert_one(job) -> None:
    """Save a new job in one INSERT, without Model.save()'s per-call SQL
    compilation (the largest cost of an enqueue after the round trip). The
    values are prepared as save() prepares them; no model signals are sent."""
    sql, fields = _single_insert(connection.vendor)
    params = [field.get_db_prep_save(getattr(job, field.attname), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        job.pk = cursor.fetchone()[0]
    job._state.adding, job._state.db = False, connection.alias


#: Tries of an enqueue whose unique key's holder keeps starting before it is read.
UNIQUE_TRIES = 10


def _insert_unique(job):
    """Insert ``job`` unless a job with its unique key waits; return the one
    that waits. The partial unique index decides, so concurrent enqueues
    (in any transactions) add one job: a second INSERT waits for the first's
    transaction, then skips (ON CONFLICT DO NOTHING)."""
    waiting = Job.objects.filter(unique_key=job.unique_key, status__in=Job.WAITING)
    for _ in range(UNIQUE_TRIES):
        if _insert([job], skip_waiting_duplicates=True):
            return job
        existing = waiting.first()
        if existing is not None:
            existing.already_waiting = True
            return existing
        # It started (or was cancelled) between the two statements: try again.
    raise RuntimeError(f"Could not enqueue or find a job with unique_key {job.unique_key!r}.")


def _fill_slot_on_commit(job):
    """A blocked job gets a slot, if its key has one free, once it commits."""
    if job.status == Job.Status.BLOCKED:
        key = job.concurrency_key
        transaction.on_commit(lambda: slots.unblock_quietly(Job, [key]))


# -- job objects ----------------------------------------------------------------


def _job_object_row(job_object, priority, run_at, queue):
    if not callable(getattr(job_object, "perform", None)):
        raise TypeError(
            f"Cannot enqueue {type(job_object).__qualname__}: it has no perform() method."
        )
    call = {"job": payload.object_state(job_object, type(job_object).__qualname__)}
    name = _attribute(job_object, "display_name") or type(job_object).__qualname__
    job = _job_row(
        call,
        name,
        priority=priority,
        run_at=run_at,
        queue=queue if queue is not None else _attribute(job_object, "queue_name"),
        max_attempts=_attribute(job_object, "max_attempts"),
        max_run_time=_attribute(job_object, "max_run_time"),
        unique_key=_attribute(job_object, "unique_key"),
        concurrency_key=_attribute(job_object, "concurrency_key"),
        concurrency_limit=_attribute(job_object, "concurrency_limit"),
    )
    if callable(getattr(job_object, "enqueue", None)):
        job_object.enqueue(job)
    return job


def enqueue(job_object, *, priority=None, run_at=None, queue=None) -> Job:
    """Queue an object with a ``perform()`` method; returns the saved Job.

    The object's ``__dict__`` is stored as JSON. ``queue`` defaults to its
    ``queue_name``; ``max_attempts``, ``max_run_time``, ``display_name``,
    ``unique_key``, ``concurrency_key`` and ``concurrency_limit`` are read
    from it when present (attributes or methods), and its ``enqueue(job)``
    hook runs before save.
    """
    return _submit(_job_object_row(job_object, priority, run_at, queue))


def enqueue_many(job_objects: Iterable, *, priority=None, run_at=None, queue=None) -> list[Job]:
    """Queue many job objects in one INSERT; returns the saved Jobs."""
    rows = [_job_object_row(obj, priority, run_at, queue) for obj in job_objects]
    if not jobs_settings().DELAY_JOBS:
        return [_submit(row) for row in rows]
    if any(row.unique_key is not None or row.concurrency_key is not None for row in rows):
        # Keyed jobs go in one at a time: each may meet its key's holder.
        with transaction.atomic():
            return [_submit(row) for row in rows]
    for row in rows:
        _settle_status(row)
    with transaction.atomic():
        for start in range(0, len(rows), INSERT_BATCH):
            _insert(rows[start : start + INSERT_BATCH])
    return rows


#: Rows per INSERT statement in enqueue_many.
INSERT_BATCH = 2000

#: What differs between the rows of one enqueue_many; the rest is shared.
_VARYING = (
    "name", "queue", "priority", "payload", "status", "run_at", "max_attempts", "max_run_time",
    "unique_key", "concurrency_key", "concurrency_limit",
)  # fmt: skip

# The rows' own values travel as one JSON array that the database unpacks
# (in C): json_populate_recordset on PostgreSQL, json_each on SQLite. Rows go
# in in array order, so each gets a larger id than the one before it.
_ROWS_SQL = {
    "postgresql": (
        "SELECT {varying}, {shared} FROM json_populate_recordset(NULL::{job}, %s)"
        " WITH ORDINALITY AS r WHERE true ORDER BY r.ordinality"
    ),
    # "WHERE true": SQLite would read ON CONFLICT as a join's ON otherwise.
    "sqlite": "SELECT {varying}, {shared} FROM json_each(%s) AS r WHERE true ORDER BY r.key",
}

# Skip a row whose unique key a waiting job holds (the partial unique index
# jobs_job_unique_waiting), rather than fail the statement.
_SKIP_WAITING_DUPLICATES = (
    " ON CONFLICT (unique_key)"
    " WHERE status IN ('ready', 'scheduled', 'blocked') AND unique_key IS NOT NULL DO NOTHING"
)
_VALUE_SQL = {
    "postgresql": "r.{column}",
    "sqlite": "json_extract(r.value, '$.{column}')",
}


def _insert(rows: list[Job], skip_waiting_duplicates: bool = False) -> bool:
    """One INSERT ... RETURNING id for many rows; False if it skipped a row
    (``skip_waiting_duplicates``, for one row at a time).

    Django's bulk_create prepares every value field by field, which costs more
    than the database's work here. Instead each row's varying values go in
    one JSON document, payloads included as they are (not encoded twice), and
    the columns every row shares (attempts, timestamps, ...) are sent once.
    """
    fields = [f for f in Job._meta.concrete_fields if not f.primary_key]
    vendor, ops = connection.vendor, connection.ops
    first = rows[0]
    shared = [f for f in fields if f.name not in _VARYING]
    varying = [f for f in fields if f.name in _VARYING]
    as_json = [(f.attname, f.column, _json_value(f, vendor, ops)) for f in varying]
    document = json.dumps(
        [
            {column: encode(getattr(row, attname)) for attname, column, encode in as_json}
            for row in rows
        ],
        separators=(",", ":"),
    )
    select = _ROWS_SQL[vendor].format(
        varying=", ".join(_VALUE_SQL[vendor].format(column=f.column) for f in varying),
        shared=", ".join(
            f"%s::{f.db_type(connection)}" if vendor == "postgresql" else "%s" for f in shared
        ),
        job=ops.quote_name(Job._meta.db_table),
    )
    sql = "INSERT INTO {} ({}) {}{} RETURNING {}".format(
        ops.quote_name(Job._meta.db_table),
        ", ".join(ops.quote_name(f.column) for f in [*varying, *shared]),
        select,
        _SKIP_WAITING_DUPLICATES if skip_waiting_duplicates else "",
        ops.quote_name("id"),
    )
    params = [f.get_db_prep_save(getattr(first, f.attname), connection) for f in shared]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, document])
        # Neither database promises RETURNING's order, but ids grow in the
        # order rows go in (sequence or AUTOINCREMENT), which is the array's.
        ids = sorted(pk for (pk,) in cursor.fetchall())
    if len(ids) < len(rows):
        return False
    written = [(f.attname, getattr(first, f.attname)) for f in shared]  # the first row's
    for row, pk in zip(rows, ids, strict=True):
        row.pk = pk
        row._state.adding, row._state.db = False, connection.alias
        for attname, value in written:
            setattr(row, attname, value)
    return True


def _json_value(field, vendor, ops):
    """How a varying column's values go into the JSON document: as they are,
    but times as text each database parses (run_at is never empty)."""
    if not isinstance(field, models.DateTimeField):
        return lambda value: value
    return datetime.isoformat if vendor == "postgresql" else ops.adapt_datetimefield_value


# -- delay() --------------------------------------------------------------------


def _encode_call(where, signature, args, kwargs):
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{where}: {exc}") from None
    return {
        "args": payload.encode(list(args), f"{where} argument"),
        "kwargs": payload.encode(dict(kwargs), f"{where} argument"),
    }


class _DelayedCall:
    """Calling this enqueues the call it stands for, and returns the Job."""

    def __init__(self, where, call, name, signature, options, instance=None):
        self._where, self._call = where, call
        self._name, self._signature = name, signature
        self._options, self._instance = options, instance

    def __call__(self, *args, **kwargs):
        call = {**self._call, **_encode_call(self._where, self._signature, args, kwargs)}
        options = {
            k: _evaluate(v, self._instance)
            for k, v in self._options.items()
            if k not in KEY_OPTIONS
        }
        options |= call_keys(self._options, args, kwargs, self._instance)
        return _submit(_job_row(call, self._name, **options))


class DelayProxy:
    """What delay(obj) returns: attribute access picks the method to delay."""

    def __init__(self, obj, options):
        if isinstance(obj, EmailMessage):
            raise TypeError(
                "Sending a built message cannot be delayed. Delay the Mailer method that "
                "builds it instead, e.g. delay(WelcomeMailer).welcome(user)."
            )
        self._obj, self._options = obj, options
        if inspect.isclass(obj):
            path = payload.dotted_path(obj, f"delay({obj.__qualname__})")
            if issubclass(obj, Mailer):
                self._receiver = {"mailer": path}
            else:
                self._receiver = {"receiver": {payload.TAG: "class", "path": path}}
        elif inspect.isfunction(obj) or getattr(obj, "_jobs_async", False):
            self._receiver = {"function": payload.dotted_path(obj, "delay()")}
        elif isinstance(obj, models.Model):
            self._receiver = {"receiver": payload.model_reference(obj, f"delay({obj!r})")}
        elif callable(obj) and not hasattr(obj, "__dict__"):
            # Builtins such as os.system: no module-level Python function.
            payload.dotted_path(obj, "delay()")
            raise TypeError(f"delay(): {obj!r} cannot be called by a worker.")
        else:
            self._receiver = {
                "receiver": payload.object_state(obj, f"delay({type(obj).__qualname__})")
            }

    def __call__(self, *args, **kwargs):
        if "function" not in self._receiver:
            raise TypeError(f"delay({self._obj!r}) is not a function; pick a method to call.")
        name = self._receiver["function"]
        return _DelayedCall(
            f"delay({name})",
            self._receiver,
            name,
            inspect.signature(self._obj),
            _with_limits(self._options, self._obj),
        )(*args, **kwargs)

    def __getattr__(self, method):
        obj = self._obj
        owner = obj if inspect.isclass(obj) else type(obj)
        where = f"delay({owner.__qualname__}).{method}"
        if "function" in self._receiver:
            raise AttributeError(f"{where}: call delay(function)(...) directly.")
        payload.check_method_name(method, where)
        static = inspect.getattr_static(obj, method, None)
        if static is None or not callable(getattr(obj, method)):
            raise AttributeError(f"{where}: {owner.__qualname__} has no method {method!r}.")
        if "mailer" in self._receiver:
            signature = inspect.signature(getattr(obj(), method))
        elif inspect.isclass(obj) and not isinstance(static, classmethod | staticmethod):
            raise TypeError(
                f"{where} is an instance method; delay an instance, or make it a classmethod."
            )
        else:
            signature = inspect.signature(getattr(obj, method))
        return _DelayedCall(
            where,
            {**self._receiver, "method": method},
            payload.receiver_name(obj, method),
            signature,
            _with_limits(self._options, getattr(obj, method)),
            instance=None if inspect.isclass(obj) else obj,
        )


def delay(
    obj,
    *,
    priority=None,
    run_at=None,
    queue=None,
    unique_key=None,
    concurrency_key=None,
    concurrency_limit=None,
) -> DelayProxy:
    """Run a method of ``obj`` (or the function ``obj``) later, in a worker.

    ``delay(photo).upload(size=2)`` and ``delay(report_function)(user)`` return
    the saved Job. ``obj`` may be a saved model instance, a class, a Mailer
    class, a module-level function, or a plain object whose state is JSON.
    ``unique_key``, ``concurrency_key`` and ``concurrency_limit``: see limits().
    """
    return DelayProxy(
        obj,
        {
            "priority": priority,
            "run_at": run_at,
            "queue": queue,
            "unique_key": unique_key,
            "concurrency_key": concurrency_key,
            "concurrency_limit": concurrency_limit,
        },
    )


# -- handle_asynchronously --------------------------------------------------------


class _BoundAsynchronous:
    """``instance.method``: calling enqueues; ``.now()`` runs it here."""

    _jobs_async = True

    def __init__(self, descriptor, instance):
        self._descriptor, self._instance = descriptor, instance
        self.now = descriptor.__wrapped__.__get__(instance)
        functools.update_wrapper(self, descriptor.__wrapped__)
        self.__signature__ = inspect.signature(self.now)

    def __call__(self, *args, **kwargs):
        name = self._descriptor.__name__
        return getattr(delay(self._instance, **self._descriptor.options), name)(*args, **kwargs)


class _Asynchronous:
    """A function or method that enqueues itself when called."""

    _jobs_async = True

    def __init__(self, function, options):
        functools.update_wrapper(self, function)
        self.options = options

    def __get__(self, instance, owner=None):
        return self if instance is None else _BoundAsynchronous(self, instance)

    def __call__(self, *args, **kwargs):
        return delay(self, **self.options)(*args, **kwargs)

    def now(self, *args, **kwargs):
        """Run synchronously (delayed_job's ``method_without_delay``)."""
        return self.__wrapped__(*args, **kwargs)


def handle_asynchronously(
    function: Callable | None = None,
    *,
    priority=None,
    run_at=None,
    queue=None,
    unique_key=None,
    concurrency_key=None,
    concurrency_limit=None,
):
    """Make every call of a method or function enqueue a job instead.

    ``run_at``, ``priority`` and ``queue`` may be values or callables evaluated
    at each call (a callable taking one argument receives the instance).
    ``unique_key``, ``concurrency_key`` and ``concurrency_limit`` may be values
    or callables given the call's arguments, the instance first for a method.
    """
    options = {
        "priority": priority,
        "run_at": run_at,
        "queue": queue,
        "unique_key": unique_key,
        "concurrency_key": concurrency_key,
        "concurrency_limit": concurrency_limit,
    }

    def decorate(func):
        if not inspect.isfunction(func):
            raise TypeError(f"handle_asynchronously decorates functions, not {func!r}.")
        return _Asynchronous(func, options)

    return decorate(function) if function is not None else decorate
