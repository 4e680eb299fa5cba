"""jobs' job for the peers comparison (importable by workers: JOBS['ALLOWED_MODULES'])."""

from django.db import connection

from .driver import INSERT_SQL


def insert_row(n: int) -> None:
    """One autocommitted INSERT through the worker's connection."""
    with connection.cursor() as cursor:
        cursor.execute(INSERT_SQL, [n])
