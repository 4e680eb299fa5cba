"""Sections 2 and 3: drain ready jobs with `manage.py jobs workoff` processes.

Throughput is the number of jobs over the time from the first claim
(min locked_at) to the last finish (max finished_at), both written by the
workers with the same clock: process start-up is left out. Every run checks
that each job ran exactly once: every row succeeded on its first attempt,
and the workers' own counts add up to the number of jobs.
"""

import re

from django.db.models import Count, Max, Min, Q

import jobs
from jobs.models import Job

from .context import BenchContext, empty_job_table, progress
from .stats import Figure
from .targets import NoopJob, SleepJob

_RAN = re.compile(r"^(\d+) jobs ran: (\d+) succeeded, (\d+) failed", re.MULTILINE)


def drain(
    ctx: BenchContext, job_objects: list, processes: int, concurrency: int | None, timeout: float
) -> float:
    """Enqueue ``job_objects``, drain them with ``processes`` workoff processes; jobs/s."""
    empty_job_table()
    jobs.enqueue_many(job_objects)
    count = len(job_objects)
    args = ["jobs", "workoff"]
    if concurrency is not None:
        args += ["--concurrency", str(concurrency)]
    with ctx.processes() as group:
        workers = [group.manage(f"workoff-{n}", *args) for n in range(processes)]
        for worker in workers:
            worker.wait(timeout)
        ran = 0
        for worker in workers:
            match = _RAN.search(worker.output)
            if worker.popen.returncode != 0 or match is None:
                raise AssertionError(f"workoff failed: {worker.describe()}")
            ran += int(match.group(1))
    check_each_ran_once(count, ran)
    window = Job.objects.aggregate(first=Min("locked_at"), last=Max("finished_at"))
    return count / (window["last"] - window["first"]).total_seconds()


def check_each_ran_once(count: int, ran: int) -> None:
    totals = Job.objects.aggregate(
        total=Count("id"),
        once=Count("id", filter=Q(status=Job.Status.SUCCEEDED, attempts=1)),
    )
    if not (totals["total"] == totals["once"] == ran == count):
        raise AssertionError(
            f"expected {count} jobs each run exactly once; rows={totals['total']}, "
            f"succeeded on first attempt={totals['once']}, runs reported by workers={ran}"
        )


def run_noop(ctx: BenchContext) -> list[Figure]:
    """Section 2: no-op jobs, 1, 2, 4 and 8 processes at the default concurrency
    (as many dynos sharing one database)."""
    count = ctx.size(5_000, 1_000)
    levels = (1, 2, 4, 8)
    rates = {level: [] for level in levels}
    for attempt in range(ctx.runs):
        for processes in levels:
            objects = [NoopJob(n) for n in range(count)]
            rates[processes].append(drain(ctx, objects, processes, None, timeout=300))
        progress(
            f"drain run {attempt + 1}: "
            + ", ".join(f"{level} processes {rates[level][-1]:,.0f}/s" for level in levels)
        )
    empty_job_table()
    ratios = [two / one for one, two in zip(rates[1], rates[2], strict=True)]
    goals = {1: "drain_1", 2: "drain_2"}
    figures = [
        Figure(
            2,
            f"drain {count:,} no-op jobs, {level} process{'es' if level > 1 else ''}",
            "jobs/s",
            rates[level],
            goal=goals.get(level),
            note="checked: each job ran exactly once",
        )
        for level in levels
    ]
    figures.append(Figure(2, "2 processes ÷ 1 process", "x", ratios))
    return figures


def run_io(ctx: BenchContext) -> list[Figure]:
    """Section 3: 20 ms sleeps, one process at --concurrency 1, 8 and 16."""
    count = ctx.size(2_000, 200)
    levels = (1, 8, 16)
    rates = {level: [] for level in levels}
    for attempt in range(ctx.runs):
        for level in levels:
            objects = [SleepJob(n, 0.02) for n in range(count)]
            rates[level].append(drain(ctx, objects, 1, level, timeout=count * 0.1 + 60))
        progress(
            f"I/O drain run {attempt + 1}: "
            + ", ".join(f"c{level} {rates[level][-1]:,.0f}/s" for level in levels)
        )
    empty_job_table()
    ratios = [sixteen / one for one, sixteen in zip(rates[1], rates[16], strict=True)]
    figures = [
        Figure(3, f"drain {count:,} x 20 ms jobs, --concurrency {level}", "jobs/s", rates[level])
        for level in levels
    ]
    figures.append(Figure(3, "--concurrency 16 ÷ --concurrency 1", "x", ratios, goal="io_ratio"))
    return figures
