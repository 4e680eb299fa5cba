"""Section 7: what unique and concurrency keys cost, beside plain jobs in the same run.

Plain jobs must not pay for keys: the claim is the same one statement, and
a keyless job never takes the slots' lock. Keyed jobs pay where they must:
a job of a key limited to one starts only once the previous one finished
and handed on its slot (one more statement after each outcome).
"""

import time

from django.db import transaction

import jobs
from jobs.models import Job

from .context import BenchContext, empty_job_table, progress
from .drain import drain
from .stats import Figure
from .targets import KeyedNoopJob, NoopJob, noop

KEYS = 50


def enqueue_rate(count: int, unique: bool) -> float:
    """jobs/s for ``count`` delay() calls, a transaction each; each with its
    own unique key if ``unique`` (so every INSERT goes in, as most do)."""
    started = time.perf_counter()
    for number in range(count):
        with transaction.atomic():
            jobs.delay(noop, unique_key=f"n{number}" if unique else None)(number)
    return count / (time.perf_counter() - started)


def run(ctx: BenchContext) -> list[Figure]:
    count = ctx.size(5_000, 500)
    plain_drain, keyed_drain, plain_enqueue, unique_enqueue = [], [], [], []
    for attempt in range(ctx.runs):
        # Interleaved, so that the machine's drift touches both alike.
        plain_drain.append(drain(ctx, [NoopJob(n) for n in range(count)], 1, None, timeout=300))
        keyed = [KeyedNoopJob(n, f"key-{n % KEYS}") for n in range(count)]
        keyed_drain.append(drain(ctx, keyed, 1, None, timeout=600))
        for rates, unique in ((plain_enqueue, False), (unique_enqueue, True)):
            empty_job_table()
            rates.append(enqueue_rate(count, unique))
            if Job.objects.count() != count:
                raise AssertionError("enqueue lost jobs")
        progress(
            f"keys run {attempt + 1}: drain plain {plain_drain[-1]:,.0f}/s, "
            f"{KEYS} keys {keyed_drain[-1]:,.0f}/s; enqueue plain {plain_enqueue[-1]:,.0f}/s, "
            f"unique {unique_enqueue[-1]:,.0f}/s"
        )
    empty_job_table()

    def ratios(part, whole):
        return [p / w for p, w in zip(part, whole, strict=True)]

    return [
        Figure(7, f"drain {count:,} no-op jobs, 1 process, no keys", "jobs/s", plain_drain),
        Figure(
            7,
            f"drain {count:,} no-op jobs over {KEYS} concurrency keys of limit 1, 1 process",
            "jobs/s",
            keyed_drain,
            note="checked: each job ran exactly once",
        ),
        Figure(7, "keyed drain ÷ plain drain", "x", ratios(keyed_drain, plain_drain)),
        Figure(7, f"enqueue {count:,} one by one, no key", "jobs/s", plain_enqueue),
        Figure(
            7, f"enqueue {count:,} one by one, each with a unique key", "jobs/s", unique_enqueue
        ),
        Figure(7, "unique enqueue ÷ plain enqueue", "x", ratios(unique_enqueue, plain_enqueue)),
    ]
