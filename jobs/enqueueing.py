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

from . import payload
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


def _job_row(call, name, *, priority, run_at, queue, max_attempts=None, max_run_time=None):
    """A validated, unsaved Job for ``call`` (an encoded payload dict)."""
    config = jobs_settings()
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
    """Ready or scheduled, by run_at as it stands after the job's enqueue hook."""
    job.status = Job.waiting_status(job.run_at, job.created_at)
    return job


def _submit(job):
    """Save ``job`` (or, with DELAY_JOBS off, run it at once) and return it."""
    if not jobs_settings().DELAY_JOBS:
        return run_inline(job)
    _settle_status(job).save()  # on PostgreSQL a trigger NOTIFYs workers (migration 0003)
    return job


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
    )
    if callable(getattr(job_object, "enqueue", None)):
        job_object.enqueue(job)
    return job


def enqueue(job_object, *, priority=None, run_at=None, queue=None) -> Job:
    """Queue an object with a ``perform()`` method; returns the saved Job.

    The object's ``__dict__`` is stored as JSON. ``queue`` defaults to its
    ``queue_name``; ``max_attempts``, ``max_run_time`` and ``display_name`` are
    read from it when present, and its ``enqueue(job)`` hook runs before save.
    """
    return _submit(_job_object_row(job_object, priority, run_at, queue))


def enqueue_many(job_objects: Iterable, *, priority=None, run_at=None, queue=None) -> list[Job]:
    """Queue many job objects in one INSERT; returns the saved Jobs."""
    rows = [_job_object_row(obj, priority, run_at, queue) for obj in job_objects]
    if not jobs_settings().DELAY_JOBS:
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
)  # fmt: skip

# The rows' own values travel as one JSON array that the database unpacks
# (in C): json_populate_recordset on PostgreSQL, json_each on SQLite. Rows go
# in in array order, so each gets a larger id than the one before it.
_ROWS_SQL = {
    "postgresql": (
        "SELECT {varying}, {shared} FROM json_populate_recordset(NULL::{job}, %s)"
        " WITH ORDINALITY AS r ORDER BY r.ordinality"
    ),
    "sqlite": "SELECT {varying}, {shared} FROM json_each(%s) AS r ORDER BY r.key",
}
_VALUE_SQL = {
    "postgresql": "r.{column}",
    "sqlite": "json_extract(r.value, '$.{column}')",
}


def _insert(rows: list[Job]) -> None:
    """One INSERT ... RETURNING id for many rows.

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
    sql = "INSERT INTO {} ({}) {} RETURNING {}".format(
        ops.quote_name(Job._meta.db_table),
        ", ".join(ops.quote_name(f.column) for f in [*varying, *shared]),
        select,
        ops.quote_name("id"),
    )
    params = [f.get_db_prep_save(getattr(first, f.attname), connection) for f in shared]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, document])
        # Neither database promises RETURNING's order, but ids grow in the
        # order rows go in (sequence or AUTOINCREMENT), which is the array's.
        ids = sorted(pk for (pk,) in cursor.fetchall())
    written = [(f.attname, getattr(first, f.attname)) for f in shared]  # the first row's
    for row, pk in zip(rows, ids, strict=True):
        row.pk = pk
        row._state.adding, row._state.db = False, connection.alias
        for attname, value in written:
            setattr(row, attname, value)


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
        options = {k: _evaluate(v, self._instance) for k, v in self._options.items()}
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
            self._options,
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
            self._options,
            instance=None if inspect.isclass(obj) else obj,
        )


def delay(obj, *, priority=None, run_at=None, queue=None) -> DelayProxy:
    """Run a method of ``obj`` (or the function ``obj``) later, in a worker.

    ``delay(photo).upload(size=2)`` and ``delay(report_function)(user)`` return
    the saved Job. ``obj`` may be a saved model instance, a class, a Mailer
    class, a module-level function, or a plain object whose state is JSON.
    """
    return DelayProxy(obj, {"priority": priority, "run_at": run_at, "queue": queue})


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
    function: Callable | None = None, *, priority=None, run_at=None, queue=None
):
    """Make every call of a method or function enqueue a job instead.

    ``run_at``, ``priority`` and ``queue`` may be values or callables evaluated
    at each call (a callable taking one argument receives the instance).
    """
    options = {"priority": priority, "run_at": run_at, "queue": queue}

    def decorate(func):
        if not inspect.isfunction(func):
            raise TypeError(f"handle_asynchronously decorates functions, not {func!r}.")
        return _Asynchronous(func, options)

    return decorate(function) if function is not None else decorate
