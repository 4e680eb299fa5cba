"""A big jobs table built in a few statements: mostly history and far-future rows.

``INSERT ... SELECT`` over generate_series (PostgreSQL) or a recursive CTE
(SQLite) writes tens of thousands of rows in well under a second, then
ANALYZE gives the planner the statistics a real, long-lived table would have.
"""

from datetime import datetime

from django.db import connection


def add_history_and_future(finished: int, future: int, *, now: datetime) -> None:
    """``finished`` jobs that ended a day ago (one in ten failed), ``future`` due
    later, all of a higher priority (1 to 10) than the default."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                """
                INSERT INTO jobs_job (name, queue, priority, payload, status, attempts, run_at,
                                      locked_by, last_error, errors, created_at, updated_at,
                                      finished_at, failed_at)
                SELECT 'history', 'default', 0, '{}'::jsonb, CASE WHEN mod(n, 10) = 0
                       THEN 'failed' ELSE 'succeeded' END, 1, %(now)s - interval '1 day', '', '',
                       '[]'::jsonb, %(now)s, %(now)s, %(now)s - interval '1 day',
                       CASE WHEN mod(n, 10) = 0 THEN %(now)s - interval '1 day' END
                  FROM generate_series(1, %(finished)s) AS n
                UNION ALL
                SELECT 'later', 'default', 1 + mod(n, 10), '{}'::jsonb, 'scheduled', 0,
                       %(now)s + interval '1 day' + n * interval '1 second',
                       '', '', '[]'::jsonb, %(now)s, %(now)s, NULL, NULL
                  FROM generate_series(1, %(future)s) AS n
                """,
                {"now": now, "finished": finished, "future": future},
            )
            cursor.execute("ANALYZE jobs_job")
        else:
            stamp = connection.ops.adapt_datetimefield_value(now)
            cursor.execute(
                """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s)
                INSERT INTO jobs_job (name, queue, priority, payload, status, attempts, run_at,
                                      locked_by, last_error, errors, created_at, updated_at,
                                      finished_at, failed_at)
                SELECT 'history', 'default', 0, '{}',
                       CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'succeeded' END, 1,
                       datetime(%s, '-1 day'), '', '', '[]', %s, %s, datetime(%s, '-1 day'),
                       CASE WHEN i % 10 = 0 THEN datetime(%s, '-1 day') END FROM n
                """,
                [finished, stamp, stamp, stamp, stamp, stamp],
            )
            cursor.execute(
                """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s)
                INSERT INTO jobs_job (name, queue, priority, payload, status, attempts, run_at,
                                      locked_by, last_error, errors, created_at, updated_at)
                SELECT 'later', 'default', 1 + i % 10, '{}', 'scheduled', 0, '2999-01-01 00:00:00',
                       '', '', '[]', %s, %s FROM n
                """,
                [future, stamp, stamp],
            )
            cursor.execute("ANALYZE")
