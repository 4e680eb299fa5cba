"""Section 1: enqueue one by one (a transaction each) and in bulk."""

import time

from django.db import transaction

import jobs
from jobs.models import Job

from .context import BenchContext, empty_job_table, progress
from .stats import Figure
from .targets import NoopJob, noop


def one_by_one(count: int) -> float:
    """jobs/s for ``count`` delay() calls, each committed on its own."""
    started = time.perf_counter()
    for number in range(count):
        with transaction.atomic():
            jobs.delay(noop)(number)
    return count / (time.perf_counter() - started)


def bulk(count: int) -> float:
    """jobs/s for one enqueue_many() of ``count`` job objects (building them included)."""
    started = time.perf_counter()
    jobs.enqueue_many(NoopJob(number) for number in range(count))
    return count / (time.perf_counter() - started)


def run(ctx: BenchContext) -> list[Figure]:
    single_count = ctx.size(5_000, 500)
    bulk_count = ctx.size(100_000, 10_000)
    singles, bulks = [], []
    for attempt in range(ctx.runs):
        empty_job_table()
        singles.append(one_by_one(single_count))
        if Job.objects.count() != single_count:
            raise AssertionError("one-by-one enqueue lost jobs")
        empty_job_table()
        bulks.append(bulk(bulk_count))
        if Job.objects.count() != bulk_count:
            raise AssertionError("bulk enqueue lost jobs")
        progress(
            f"enqueue run {attempt + 1}: {singles[-1]:,.0f}/s one by one, {bulks[-1]:,.0f}/s bulk"
        )
    empty_job_table()
    return [
        Figure(
            1,
            f"enqueue {single_count:,} one by one (a transaction each)",
            "jobs/s",
            singles,
            goal="enqueue_one",
        ),
        Figure(1, f"enqueue_many of {bulk_count:,}", "jobs/s", bulks, goal="enqueue_bulk"),
    ]
