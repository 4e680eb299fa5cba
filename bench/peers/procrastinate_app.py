"""Procrastinate's app and job for the peers comparison (outside __main__, as it asks)."""

import threading

import psycopg
from procrastinate import App, PsycopgConnector

from .driver import INSERT_SQL, database_url

app = App(connector=PsycopgConnector(conninfo=database_url()))
_local = threading.local()


@app.task(name="insert_row")
def insert_row(n: int) -> None:
    # Sync tasks run in worker threads: one autocommit connection per thread.
    if not hasattr(_local, "connection"):
        _local.connection = psycopg.connect(database_url(), autocommit=True)
    _local.connection.execute(INSERT_SQL, [n])
