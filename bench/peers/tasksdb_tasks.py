"""django-tasks-db's job for the peers comparison (a module the worker imports)."""

from django.db import connection
from django.tasks import task

from .driver import INSERT_SQL


@task
def insert_row(n: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(INSERT_SQL, [n])
