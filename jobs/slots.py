"""Concurrency slots: at most ``concurrency_limit`` jobs of a key ready or running.

A job with a concurrency key never makes itself ready. It waits as blocked
(claims never read blocked rows, so nothing spins on it), and ``unblock``
moves the first blocked jobs of each key to ready while the key has free
slots. Ready and running jobs hold the slots; a job frees its slot by
leaving those statuses (success, failure, retry, cancellation, shutdown,
crash recovery), and whoever moved it calls ``unblock`` for its key.

Only ``unblock`` makes a keyed job ready, so the limit holds if unblocks
never overlap: on PostgreSQL they take one transaction-level advisory lock
(cheap, and only keyed jobs ever take it); on SQLite every write statement
holds the database's single write lock anyway. A claim of a ready keyed job
keeps it holding its slot, so claims stay one statement and take no lock.

Lives below the models (it takes the model class as an argument) so that
the models' operator verbs can free and fill slots too.
"""

import logging
from contextlib import contextmanager

from django.db import connections, transaction

from .clock import now_sql
from .notifying import notify_enqueued

logger = logging.getLogger("jobs")

#: The advisory lock that serialises unblocking (PostgreSQL): "jobs" in ASCII.
UNBLOCK_LOCK = 0x6A6F6273

_UNBLOCK_SQL = """
UPDATE {job} SET status = 'ready', updated_at = {now}
 WHERE id IN (
       SELECT candidate.id
         FROM (SELECT id, concurrency_key, concurrency_limit,
                      ROW_NUMBER() OVER (
                          PARTITION BY concurrency_key ORDER BY priority DESC, run_at, id
                      ) AS place
                 FROM {job}
                WHERE status = 'blocked'{keys}) AS candidate
         LEFT JOIN (SELECT concurrency_key, COUNT(*) AS taken
                      FROM {job}
                     WHERE status IN ('ready', 'running') AND concurrency_key IS NOT NULL{keys}
                     GROUP BY concurrency_key) AS held
           ON held.concurrency_key = candidate.concurrency_key
        WHERE candidate.place + COALESCE(held.taken, 0) <= COALESCE(candidate.concurrency_limit, 1)
 )
RETURNING queue
"""


@contextmanager
def serialized(using: str = "default"):
    """A transaction in which no unblock runs concurrently (PostgreSQL)."""
    with transaction.atomic(using=using):
        connection = connections[using]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [UNBLOCK_LOCK])
        yield


def unblock(model, keys=None, *, using: str = "default") -> int:
    """Make blocked jobs ready while their keys have free slots; returns how
    many. ``keys``: only these concurrency keys (None: every key)."""
    keys = None if keys is None else sorted({key for key in keys if key})
    if keys == []:
        return 0
    connection = connections[using]
    ops = connection.ops
    key_filter = f" AND concurrency_key IN ({', '.join(['%s'] * len(keys))})" if keys else ""
    sql = _UNBLOCK_SQL.format(
        job=ops.quote_name(model._meta.db_table),
        now=now_sql(connection.vendor),
        keys=key_filter,
    )
    params = [*(keys or []), *(keys or [])]
    with serialized(using), connection.cursor() as cursor:
        cursor.execute(sql, params)
        queues = [queue for (queue,) in cursor.fetchall()]
    if queues:
        notify_enqueued(queues, using=using)
    return len(queues)


def unblock_quietly(model, keys, *, using: str = "default") -> None:
    """``unblock`` where a failure must not fail the caller (an outcome is
    already written): the worker's periodic sweep catches up."""
    try:
        unblock(model, keys, using=using)
    except Exception:
        logger.warning("could not unblock keys %s now; the next sweep will", keys, exc_info=True)
