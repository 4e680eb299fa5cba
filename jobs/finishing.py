"""Group commit for successes: threads that finish together share one UPDATE.

A success costs a worker one committed write, and the commit (a disk flush on
PostgreSQL, the write lock on SQLite) dominates a short job. Threads that
finish while another thread's write is in flight queue up; the next one to
write takes the whole queue in one statement. Each row keeps the guard of a
single write (still running, same worker, same attempt), and RETURNING tells
which rows were still ours.
"""

import threading
from dataclasses import dataclass

from django.db import connection

from .models import Job
from .running import patiently

_SQL = """
WITH done (id, locked_by, attempts, result, finished_at) AS (VALUES {rows})
UPDATE {job} SET status = 'succeeded', result = {result}, finished_at = done.finished_at,
       updated_at = done.finished_at
  FROM done
 WHERE {job}.id = done.id AND {job}.status = 'running'
   AND {job}.locked_by = done.locked_by AND {job}.attempts = done.attempts
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
    """``record(job, now, result)`` for a worker's executor threads."""

    def __init__(self):
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
            ids = patiently(lambda: _update(batch), f"{len(batch)} successes")
        except BaseException as exc:
            for item in batch:
                item.error = exc
        else:
            for item in batch:
                item.recorded = item.job.pk in ids
                if item.recorded:
                    job = item.job
                    job.status, job.result = Job.Status.SUCCEEDED, item.result
                    job.finished_at = job.updated_at = item.now
        finally:
            with self._changed:
                self._writing = False
                self._changed.notify_all()


def _update(batch: list[_Success]) -> set[int]:
    field = Job._meta.get_field("result")
    ops = connection.ops
    params = []
    for item in batch:
        params += [
            item.job.pk,
            item.job.locked_by,
            item.job.attempts,
            field.get_db_prep_save(item.result, connection),
            ops.adapt_datetimefield_value(item.now),
        ]
    postgres = connection.vendor == "postgresql"
    row = "(%s, %s, %s, %s, %s::timestamptz)" if postgres else "(%s, %s, %s, %s, %s)"
    sql = _SQL.format(
        rows=", ".join([row] * len(batch)),
        job=ops.quote_name(Job._meta.db_table),
        result="done.result::jsonb" if postgres else "done.result",
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}
