"""Group commit for successes: threads that finish together share one UPDATE.

A success costs a worker one committed write, and the commit (a disk flush on
PostgreSQL, the write lock on SQLite) dominates a short job. Threads that
finish while another thread's write is in flight queue up; the next one to
write takes the whole queue in one statement. Each row keeps the guard of a
single write (still running under the same lease), and RETURNING tells which
rows were still ours. If the database refuses the batch for one row's sake,
each success is written on its own, so one bad outcome never fails the others.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import DatabaseError, InterfaceError, OperationalError, connection

from . import slots
from .models import Job
from .running import patiently

logger = logging.getLogger("jobs")

_SQL = """
WITH done (id, lease, result, finished_at) AS (VALUES {rows})
UPDATE {job} SET status = 'succeeded', result = {result}, finished_at = done.finished_at,
       updated_at = done.finished_at
  FROM done
 WHERE {job}.id = done.id AND {job}.status = 'running' AND {job}.lease = done.lease
RETURNING {job}.id
"""


@dataclass
class _Success:
    job: Job
    now: object
    result: object
    recorded: bool | None = None
    error: BaseException | None = None


class SuccessRecorder:
    """``record(job, now, result)`` for a worker's executor threads.

    ``give_up()`` says when to stop retrying while the database is away.
    """

    def __init__(self, give_up: Callable[[], bool] | None = None):
        self.give_up = give_up
        self._changed = threading.Condition()
        self._queue: list[_Success] = []
        self._writing = False

    def __call__(self, job: Job, now, result) -> bool:
        item = _Success(job, now, result)
        with self._changed:
            self._queue.append(item)
            while self._writing and item.recorded is None and item.error is None:
                self._changed.wait()
            if item.recorded is None and item.error is None:
                self._writing = True
                batch, self._queue = self._queue, []
            else:
                batch = None
        if batch is not None:
            self._write(batch)
        if item.error is not None:
            raise item.error
        return item.recorded

    def _write(self, batch: list[_Success]) -> None:
        try:
            recorded = self._write_batch(batch)
        except BaseException as exc:
            for item in batch:
                item.error = exc
        else:
            for item in batch:
                if item.error is not None:
                    continue
                item.recorded = item.job.pk in recorded
                if item.recorded:
                    job = item.job
                    job.status, job.result = Job.Status.SUCCEEDED, item.result
                    job.finished_at = job.updated_at = item.now
        finally:
            with self._changed:
                self._writing = False
                self._changed.notify_all()
        # Their concurrency slots are free: the next jobs of their keys may go.
        keys = {item.job.concurrency_key for item in batch if item.recorded}
        keys.discard(None)
        if keys:
            slots.unblock_quietly(Job, keys)

    def _write_batch(self, batch: list[_Success]) -> set[int]:
        try:
            return self._write_together(batch)
        except (OperationalError, InterfaceError):
            raise
        except DatabaseError as exc:
            if len(batch) == 1:
                batch[0].error = exc  # its thread records a failure instead
                return set()
            logger.warning("%s successes refused together (%s); one by one", len(batch), exc)
        recorded = set()
        for item in batch:
            try:
                recorded |= self._write_together([item])
            except (OperationalError, InterfaceError):
                raise
            except DatabaseError as exc:
                item.error = exc  # this one alone
        return recorded

    def _write_together(self, batch: list[_Success]) -> set[int]:
        """One guarded UPDATE for ``batch``; the ids it recorded."""
        ids, uncertain = patiently(lambda: _update(batch), f"{len(batch)} successes", self.give_up)
        if uncertain:  # a lost reply: the rows tell what committed
            ids |= _already_succeeded(batch)
        return ids


def _already_succeeded(batch: list[_Success]) -> set[int]:
    leases = {item.job.pk: item.job.lease for item in batch}
    rows = Job.objects.filter(pk__in=leases, status=Job.Status.SUCCEEDED)
    return {pk for pk, lease in rows.values_list("pk", "lease") if leases[pk] == lease}


def _update(batch: list[_Success]) -> set[int]:
    field = Job._meta.get_field("result")
    ops = connection.ops
    params = []
    for item in batch:
        params += [
            item.job.pk,
            item.job.lease,
            field.get_db_prep_save(item.result, connection),
            ops.adapt_datetimefield_value(item.now),
        ]
    postgres = connection.vendor == "postgresql"
    row = "(%s, %s, %s, %s::timestamptz)" if postgres else "(%s, %s, %s, %s)"
    sql = _SQL.format(
        rows=", ".join([row] * len(batch)),
        job=ops.quote_name(Job._meta.db_table),
        result="done.result::jsonb" if postgres else "done.result",
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}
