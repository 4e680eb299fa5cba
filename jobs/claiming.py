"""The SQL that hands due jobs to exactly one worker, per database.

Claiming is one UPDATE ... RETURNING over a sub-select of the due jobs. On
PostgreSQL the sub-select locks with FOR UPDATE SKIP LOCKED, so concurrent
workers pass over each other's rows instead of waiting. On SQLite the UPDATE
holds the database's single write lock for the whole statement, which is
just as exclusive.
"""

from django.db import connections

from .clock import due_sql, now_sql
from .models import Job, PausedQueue

NOTIFY_CHANNEL = "jobs_enqueued"

_CLAIM_SQL = """
UPDATE {job}
   SET status = 'running', attempts = attempts + 1,
       locked_by = %s, locked_at = {now}, updated_at = {now}
 WHERE id IN (
       SELECT id FROM {job}
        WHERE status = 'ready' AND run_at <= {due}{filters}
          AND NOT EXISTS (SELECT 1 FROM {paused} p WHERE p.queue = {job}.queue)
        ORDER BY priority DESC, run_at, id
        LIMIT %s{lock})
RETURNING {columns}
"""


def claim_statement(
    *,
    limit: int,
    worker_name: str,
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
        lock=" FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else "",
        columns=", ".join(connection.ops.quote_name(f.column) for f in Job._meta.concrete_fields),
        now="%s" if now is not None else now_sql(connection.vendor),
        due="%s" if now is not None else due_sql(connection.vendor),
    )
    if now is None:
        return sql, [worker_name, *params, limit]
    timestamp = connection.ops.adapt_datetimefield_value(now)
    return sql, [worker_name, timestamp, timestamp, timestamp, *params, limit]


def claim_due_jobs(
    *, worker_name: str, limit: int, now=None, using="default", **filters
) -> list[Job]:
    """Mark up to ``limit`` due jobs as running for ``worker_name``; return them.

    ``filters``: queues, min_priority, max_priority. Returned jobs are in run
    order: priority (higher first), run_at, id.
    """
    sql, params = claim_statement(
        limit=limit, now=now, worker_name=worker_name, using=using, **filters
    )
    jobs = list(Job.objects.using(using).raw(sql, params))
    jobs.sort(key=lambda job: (-job.priority, job.run_at, job.pk))
    return jobs


def notify_enqueued(queues, using="default") -> None:
    """Wake listening workers for jobs made due by an UPDATE (PostgreSQL).

    Inserts need no call: a trigger notifies for them (migration 0003).
    """
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for queue in sorted(set(queues)):
                cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, queue])
