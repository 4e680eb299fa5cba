"""Section 4: pickup latency of an idle `jobs work` process.

Each job is enqueued in its own transaction; the bench takes time.time()
right after the commit, and the job sends time.time() from its first line
(bench.targets.record_start) over UDP, so both ends read the same clock and
the bench waits on a socket instead of polling the database. Between jobs
the bench waits a random 20-600 ms so the worker is idle (asleep on LISTEN,
or at a random point of its poll interval on SQLite).
"""

import random
import socket
import time

from django.db import transaction

import jobs

from .context import BenchContext, empty_job_table, progress
from .processes import BenchProcessError
from .stats import Figure, percentile
from .targets import PICKUP_ADDRESS_ENV, record_start

WARM_UP = 3
#: Longest idle gap between jobs: beyond SQLite's 0.5 s poll interval, so
#: enqueues land at a random point of it (a worker that just finished a job
#: has just started its wait, which would make every pickup look slow).
IDLE_MAX = 0.6


def _wait_for_start(sock: socket.socket, number: int, worker, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not worker.running():
            raise BenchProcessError(f"job {number} did not start: {worker.describe()}")
        sock.settimeout(remaining)
        try:
            data = sock.recv(100).decode().split()
        except TimeoutError:
            continue
        if int(data[0]) == number:
            return float(data[1])


def one_run(ctx: BenchContext, count: int) -> list[float]:
    """Latencies in ms of ``count`` jobs picked up by a fresh idle worker."""
    empty_job_table()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        with ctx.processes(**{PICKUP_ADDRESS_ENV: address}) as group:
            worker = group.manage("work-pickup", "jobs", "work")
            latencies = []
            for number in range(-WARM_UP, count):
                time.sleep(random.uniform(0.02, IDLE_MAX))
                with transaction.atomic():
                    jobs.delay(record_start)(number)
                committed = time.time()
                started = _wait_for_start(sock, number, worker, timeout=60)
                if number >= 0:
                    latencies.append((started - committed) * 1000)
    return latencies


def run(ctx: BenchContext) -> list[Figure]:
    count = ctx.size(50, 20)
    percentiles = {50: [], 90: [], 99: []}
    for attempt in range(ctx.runs):
        latencies = one_run(ctx, count)
        for p, values in percentiles.items():
            values.append(percentile(latencies, p))
        progress(
            f"pickup run {attempt + 1}: p50 {percentiles[50][-1]:.1f} ms, "
            f"p99 {percentiles[99][-1]:.1f} ms"
        )
    empty_job_table()
    suffix = "pg" if ctx.engine == "postgres" else "sqlite"
    how = "LISTEN/NOTIFY" if ctx.engine == "postgres" else "polling"
    return [
        Figure(
            4,
            f"pickup latency p{p}, {count} jobs, idle worker ({how})",
            "ms",
            values,
            goal={50: f"pickup_p50_{suffix}", 99: f"pickup_p99_{suffix}"}.get(p),
        )
        for p, values in percentiles.items()
    ]
