"""The SQL that hands due jobs to exactly one worker, per database.

Claiming is one UPDATE ... RETURNING over a sub-select of the due jobs. On
PostgreSQL the sub-select locks with FOR UPDATE SKIP LOCKED, so concurrent
workers pass over each other's rows instead of waiting. On SQLite the UPDATE
holds the database's single write lock for the whole statement, which is
just as exclusive.

Claims read only ready jobs. Jobs due later wait as scheduled, in an index
of their own, and workers promote them to ready as their time comes: so a
claim costs the same with a hundred thousand jobs scheduled for tomorrow,
whatever their priority, as with none.

Each claim writes a fresh lease token into the rows it takes. Everything the
claimant later writes to those rows (outcome, release) is conditional on that
token, so a worker that stalled and lost its claim can never overwrite what
happened since: an operator's retry, a recovery, another worker's claim.
"""

import secrets

from django.db import connections

from . import slots
from .clock import due_sql, now_sql
from .models import Job, PausedQueue
from .notifying import notify_enqueued

_CLAIM_SQL = """
UPDATE {job}
   SET status = 'running', attempts = attempts + 1,
       locked_by = %s, lease = %s, locked_at = {now}, updated_at = {now}
 WHERE id {in_ids}
       SELECT id FROM {job}
        WHERE status = 'ready' AND run_at <= {due}{filters}
          AND NOT EXISTS (SELECT 1 FROM {paused} p WHERE p.queue = {job}.queue)
        ORDER BY priority DESC, run_at, id
        LIMIT %s{lock}{end_ids}
RETURNING {columns}
"""


_PROMOTE_SQL = """
UPDATE {job}
   SET status = CASE WHEN concurrency_key IS NULL THEN 'ready' ELSE 'blocked' END,
       updated_at = {now}
 WHERE id {in_ids}
       SELECT id FROM {job}
        WHERE status = 'scheduled' AND run_at <= {due}
        ORDER BY run_at, id
        LIMIT %s{lock}{end_ids}
RETURNING queue, concurrency_key
"""


def _sub_select(vendor: str) -> dict[str, str]:
    """How an UPDATE takes the rows its sub-select picked, and locks them.

    On PostgreSQL the ids go into an array, computed once, and the UPDATE
    finds each row by primary key. With a plain IN the planner may guess the
    sub-select large and hash-join it against the whole table, which reads
    every finished row.
    """
    if vendor == "postgresql":
        return {"in_ids": "= ANY(ARRAY(", "end_ids": "))", "lock": " FOR UPDATE SKIP LOCKED"}
    return {"in_ids": "IN (", "end_ids": ")", "lock": ""}


#: The most scheduled jobs one promotion moves (one short transaction).
PROMOTE_BATCH = 1000


def promote_due_jobs(*, now=None, limit=PROMOTE_BATCH, using="default") -> list[str]:
    """Make scheduled jobs whose run_at has come ready; returns their queues.

    ``now=None`` uses the database's clock, as claims do. Promotion covers
    every queue: a worker promotes jobs it does not serve for the workers
    that do, and wakes them (PostgreSQL). A job with a concurrency key goes
    to blocked instead, and gets a slot if its key has one free.
    """
    connection = connections[using]
    sql = _PROMOTE_SQL.format(
        job=connection.ops.quote_name(Job._meta.db_table),
        **_sub_select(connection.vendor),
        now="%s" if now is not None else now_sql(connection.vendor),
        due="%s" if now is not None else due_sql(connection.vendor),
    )
    params = [limit]
    if now is not None:
        timestamp = connection.ops.adapt_datetimefield_value(now)
        params = [timestamp, timestamp, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    queues = [queue for queue, key in rows if key is None]
    if queues:
        notify_enqueued(queues, using=using)
    keys = {key for _, key in rows if key is not None}
    if keys:
        slots.unblock(Job, keys, using=using)
    return [queue for queue, _ in rows]


def new_lease() -> str:
    """A claim's token: unique in practice (128 random bits)."""
    return secrets.token_hex(16)


def claim_statement(
    *,
    limit: int,
    worker_name: str,
    lease: str = "",
    now=None,
    queues=(),
    min_priority=None,
    max_priority=None,
    using="default",
) -> tuple[str, list]:
    """The claim's SQL and parameters (exposed so tests can EXPLAIN it).

    ``now=None`` compares run_at with the database's clock, as workers do, so
    a worker whose own clock is off neither runs jobs early nor starves them.
    """
    connection = connections[using]
    filters, params = [], []
    if queues:
        filters.append(f"queue IN ({', '.join(['%s'] * len(queues))})")
        params.extend(queues)
    if min_priority is not None:
        filters.append("priority >= %s")
        params.append(min_priority)
    if max_priority is not None:
        filters.append("priority <= %s")
        params.append(max_priority)
    sql = _CLAIM_SQL.format(
        job=connection.ops.quote_name(Job._meta.db_table),
        paused=connection.ops.quote_name(PausedQueue._meta.db_table),
        filters="".join(f" AND {f}" for f in filters),
        **_sub_select(connection.vendor),
        columns=", ".join(
            connection.ops.quote_name(Job._meta.get_field(name).column) for name in Job.RUN_FIELDS
        ),
        now="%s" if now is not None else now_sql(connection.vendor),
        due="%s" if now is not None else due_sql(connection.vendor),
    )
    lease = lease or new_lease()
    if now is None:
        return sql, [worker_name, lease, *params, limit]
    timestamp = connection.ops.adapt_datetimefield_value(now)
    return sql, [worker_name, lease, timestamp, timestamp, timestamp, *params, limit]


def claim_due_jobs(
    *, worker_name: str, limit: int, lease: str = "", now=None, using="default", **filters
) -> list[Job]:
    """Mark up to ``limit`` due jobs as running for ``worker_name``; return them.

    ``lease``: the claim's token (made here if not given; a worker makes it
    first, so that it can release the claim even if the reply never comes).
    ``filters``: queues, min_priority, max_priority. Returned jobs hold only
    Job.RUN_FIELDS (the rest loads on access), in run order: priority
    (higher first), run_at, id.
    """
    sql, params = claim_statement(
        limit=limit, now=now, worker_name=worker_name, lease=lease, using=using, **filters
    )
    jobs = list(Job.objects.using(using).raw(sql, params))
    jobs.sort(key=lambda job: (-job.priority, job.run_at, job.pk))
    return jobs
