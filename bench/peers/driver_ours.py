"""jobs' driver: the app's own code, settings and `manage.py jobs` worker (in .venv)."""

import os
import sys

os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

import jobs  # noqa: E402
from bench.context import empty_job_table  # noqa: E402
from bench.peers.driver import main  # noqa: E402
from bench.peers.ours_target import insert_row  # noqa: E402


def enqueue_one(n: int) -> None:
    # The same call as bench section 1: delay() in its own transaction.
    with transaction.atomic():
        jobs.delay(insert_row)(n)


def _manage(*args: str) -> None:
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "manage.py", "jobs", *args])


if __name__ == "__main__":
    main(
        setup=lambda: call_command("migrate", interactive=False, verbosity=0),
        reset=empty_job_table,
        enqueue_one=enqueue_one,
        workoff=lambda: _manage("workoff"),
        work=lambda: _manage("work"),
    )
