"""What every section gets: the database, sizes, runs, and shared helpers.

Imported only inside bench.runner's child process, after django.setup().
"""

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from django.db import connection

from jobs.models import Job

from .processes import ProcessGroup, bench_env


@dataclass
class BenchContext:
    engine: str  # "sqlite" or "postgres"
    database_url: str
    workdir: Path  # logs and scratch files for this database
    static_root: Path
    runs: int
    quick: bool

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def env(self, **extra: str) -> dict[str, str]:
        return bench_env(self.database_url, BENCH_STATIC_ROOT=str(self.static_root), **extra)

    def processes(self, **extra_env: str) -> ProcessGroup:
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        return ProcessGroup(self.env(**extra_env), logs)


def progress(message: str) -> None:
    """One line on stderr, so a long run shows where it is (stdout stays for results)."""
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def empty_job_table() -> None:
    """Remove every job (and what points at jobs) fast, between runs."""
    table = connection.ops.quote_name(Job._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {table} RESTART IDENTITY CASCADE")
        else:
            cursor.execute("DELETE FROM signupdemo_scheduledemail")
            cursor.execute(f"DELETE FROM {table}")


def analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
