"""Section 5: claim time with a big history and many future jobs, against an empty table.

One claim = jobs.claiming.claim_due_jobs(limit=1) taking the single due job.
Between claims (outside the timing) the claimed row is deleted and a new due
job enqueued, so every claim sees the same table. Future jobs are written as
enqueue writes them (status "scheduled") with priorities from -10 to 10 and
the due job 0: half the future jobs rank above it, so a claim that read them
in its priority-first index would have to skip them.
"""

import time
from datetime import timedelta

from django.db import connection
from django.utils import timezone

import jobs
from jobs.claiming import claim_due_jobs
from jobs.dashboard import queries as dashboard
from jobs.models import Job

from .context import BenchContext, analyze, empty_job_table, progress
from .stats import Figure, median
from .targets import NoopJob

#: The due job's run_at is this far in the past: claims compare with the
#: database's clock, which SQLite reads to the millisecond only.
DUE_FOR = timedelta(seconds=1)

_COLUMNS = (
    "name, queue, priority, payload, status, attempts, run_at, locked_by, last_error, "
    "errors, created_at, updated_at, locked_at, finished_at, failed_at"
)
_PAYLOAD = (
    '{"v": 1, "job": {"__jobs__": "object", "class": "bench.targets.NoopJob", '
    '"state": {"number": 0}}}'
)

_POSTGRES_FILL = f"""
INSERT INTO jobs_job ({_COLUMNS})
SELECT 'bench.targets.NoopJob', 'default', %(priority)s, %(payload)s::jsonb,
       %(status)s, %(attempts)s, %(base)s + g * %(step)s * interval '1 millisecond', '', %(error)s,
       '[]'::jsonb, %(now)s, %(now)s, %(locked)s::timestamptz,
       %(finished)s::timestamptz - g * %(spread)s * interval '1 millisecond',
       %(failed)s::timestamptz - g * %(spread)s * interval '1 millisecond'
  FROM generate_series(1, %(count)s) AS g
"""

_SQLITE_FILL = f"""
WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < %(count)s)
INSERT INTO jobs_job ({_COLUMNS})
SELECT 'bench.targets.NoopJob', 'default', %(priority)s, %(payload)s,
       %(status)s, %(attempts)s,
       strftime('%%Y-%%m-%%d %%H:%%M:%%f', %(base)s, '+' || (i * %(step)s / 1000.0) || ' seconds'),
       '', %(error)s, '[]', %(now)s, %(now)s, %(locked)s,
       strftime('%%Y-%%m-%%d %%H:%%M:%%f', %(finished)s,
                '-' || (i * %(spread)s / 1000.0) || ' seconds'),
       strftime('%%Y-%%m-%%d %%H:%%M:%%f', %(failed)s,
                '-' || (i * %(spread)s / 1000.0) || ' seconds')
  FROM g
"""


DAY_MS = 86_400_000


def fill(finished: int, future: int) -> None:
    """Insert ``finished`` succeeded/failed rows (1 in 10 failed) and ``future`` scheduled rows."""
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    batches = [
        # (count, status, attempts, priority, base run_at, step ms, error)
        (finished - finished // 10, "succeeded", 1, 0, now - timedelta(days=3), 1, ""),
        (finished // 10, "failed", 25, 0, now - timedelta(days=3), 1, "RuntimeError: bench"),
        (future, "scheduled", 0, None, now + timedelta(hours=1), 50, ""),
    ]
    with connection.cursor() as cursor:
        for count, status, attempts, priority, base, step, error in batches:
            done = status != "scheduled"
            params = {
                "count": count,
                "status": status,
                "attempts": attempts,
                "payload": _PAYLOAD,
                "base": adapt(base),
                "step": step,
                "error": error,
                "now": adapt(now),
                "locked": adapt(base) if done else None,
                "finished": adapt(now) if done else None,
                "failed": adapt(now) if status == "failed" else None,
                # Finished over the last day, as a table of a million jobs a
                # day would be, rather than all at one instant.
                "spread": DAY_MS / count,
            }
            postgres = connection.vendor == "postgresql"
            sql = _POSTGRES_FILL if postgres else _SQLITE_FILL
            if priority is None:  # future rows: -10 to 10
                sql = sql.replace(
                    "%(priority)s", "((g %% 21) - 10)" if postgres else "((i %% 21) - 10)"
                )
            else:
                params["priority"] = priority
            cursor.execute(sql, params)
    analyze()


def time_claims(repetitions: int) -> list[float]:
    """Milliseconds per claim of the one due job, ``repetitions`` times."""
    times = []
    for _ in range(repetitions):
        job = jobs.enqueue(NoopJob(0), run_at=timezone.now() - DUE_FOR)
        started = time.perf_counter()
        claimed = claim_due_jobs(worker_name="bench", limit=1)
        times.append((time.perf_counter() - started) * 1000)
        if [j.pk for j in claimed] != [job.pk]:
            raise AssertionError(f"claimed {claimed} instead of job {job.pk}")
        Job.objects.filter(pk=job.pk).delete()
    return times


def explain_claim() -> str:
    """The query plan of the claim a worker runs, captured as it executes."""
    captured = []

    def capture(execute, sql, params, many, context):
        if "UPDATE" in sql and not captured:
            captured.append((sql, params))
        return execute(sql, params, many, context)

    jobs.enqueue(NoopJob(0), run_at=timezone.now() - DUE_FOR)
    with connection.execute_wrapper(capture):
        claim_due_jobs(worker_name="bench", limit=1)
    sql, params = captured[0]
    prefix = "EXPLAIN" if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN"
    with connection.cursor() as cursor:
        cursor.execute(f"{prefix} {sql}", params)
        plan = "\n".join(" ".join(str(c) for c in row) for row in cursor.fetchall())
    Job.objects.filter(status=Job.Status.RUNNING).delete()
    return plan


def _second_page(status: str, sort: str):
    """The page after the first, in the order ``sort`` names: it starts at a keyset cursor."""
    cursor = dashboard.job_page(status, sort=sort, size=1).next_cursor
    return dashboard.job_page(status, sort=sort, after=cursor or "")


#: The dashboard's reads, by page: what a page costs the database, without
#: rendering. Each must cost on the big table what it costs on a small one.
DASHBOARD_PAGES = {
    "overview": lambda: dashboard.overview(),
    "failed list, first page": lambda: dashboard.job_page(Job.Status.FAILED),
    "failed list, a task's last hour": lambda: dashboard.job_page(
        Job.Status.FAILED, name="NoopJob", time_range="1h"
    ),
    "succeeded list, oldest first": lambda: dashboard.job_page(Job.Status.SUCCEEDED, sort="oldest"),
    "succeeded list, oldest first, second page": lambda: _second_page(
        Job.Status.SUCCEEDED, "oldest"
    ),
    "scheduled list, latest first": lambda: dashboard.job_page(Job.Status.SCHEDULED, sort="latest"),
    "list filters' choices": lambda: dashboard.filter_choices(),
    "a task's page": lambda: dashboard.task_stats("bench.targets.NoopJob"),
    "workers": lambda: dashboard.workers(),
}


def time_dashboard(repetitions: int) -> dict[str, float]:
    """Median milliseconds of each dashboard page's reads."""
    medians = {}
    for page, read in DASHBOARD_PAGES.items():
        read()  # warm
        times = []
        for _ in range(repetitions):
            started = time.perf_counter()
            read()
            times.append((time.perf_counter() - started) * 1000)
        medians[page] = median(times)
    return medians


def run(ctx: BenchContext) -> list[Figure]:
    finished = ctx.size(1_000_000, 100_000)
    future = ctx.size(100_000, 10_000)
    repetitions = ctx.size(100, 20)
    empty_job_table()
    analyze()
    # Warm the connection and the query path before timing anything.
    time_claims(5)
    empty_runs = [median(time_claims(repetitions)) for _ in range(ctx.runs)]
    progress(
        f"claim on an empty table: {median(empty_runs):.2f} ms; filling "
        f"{finished:,} finished + {future:,} future rows"
    )
    started = time.perf_counter()
    fill(finished, future)
    progress(f"filled in {time.perf_counter() - started:.1f}s")
    time_claims(5)
    big_runs = [median(time_claims(repetitions)) for _ in range(ctx.runs)]
    plan = explain_claim()
    progress(f"claim on the big table: {median(big_runs):.2f} ms")
    pages = [time_dashboard(ctx.size(3, 5)) for _ in range(ctx.runs)]
    progress(
        "dashboard reads: "
        + ", ".join(f"{p} {median([r[p] for r in pages]):.1f} ms" for p in DASHBOARD_PAGES)
    )
    empty_job_table()
    ratios = [big / empty for empty, big in zip(empty_runs, big_runs, strict=True)]
    each = f"median of {repetitions} claims per run"
    return [
        Figure(5, "claim 1 due job, empty table", "ms", empty_runs, note=each),
        Figure(
            5,
            f"claim 1 due job, {finished:,} finished + {future:,} future rows",
            "ms",
            big_runs,
            note=each,
            extra={"plan": plan},
        ),
        Figure(5, "big table ÷ empty table", "x", ratios, goal="claim_ratio"),
        *[
            Figure(
                5,
                f"dashboard: {page}, same table",
                "ms",
                [run[page] for run in pages],
                # The overview is today's page, the bound the others keep to.
                goal=None if page == "overview" else "dashboard_page",
                note="its queries, without rendering",
            )
            for page in DASHBOARD_PAGES
        ],
    ]
