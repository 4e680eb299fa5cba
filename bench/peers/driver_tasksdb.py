"""django-tasks-db's driver: django.tasks' @task and its `db_worker` command."""

import os
import sys

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.peers.tasksdb_settings"

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from bench.peers.driver import main  # noqa: E402
from bench.peers.tasksdb_tasks import insert_row  # noqa: E402


def enqueue_one(n: int) -> None:
    with transaction.atomic():
        insert_row.enqueue(n)


def reset() -> None:
    from django_tasks_db.models import DBTaskResult

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {DBTaskResult._meta.db_table}")


def _db_worker(*args: str) -> None:
    # Its defaults (1 s poll interval, a connection per task); no start-up jitter.
    sys.stdout.flush()
    argv = [sys.executable, "-m", "django", "db_worker", "--no-startup-delay", "--no-reload"]
    os.execv(sys.executable, argv + list(args))


if __name__ == "__main__":
    main(
        setup=lambda: call_command("migrate", interactive=False, verbosity=0),
        reset=reset,
        enqueue_one=enqueue_one,
        workoff=lambda: _db_worker("--batch"),
        work=lambda: _db_worker(),
    )
