"""Procrastinate's driver: plain Python, its psycopg connector, one worker per process."""

import psycopg

from bench.peers.driver import database_url, main
from bench.peers.procrastinate_app import app, insert_row

_opened = []


def _open() -> None:
    if not _opened:
        app.open()  # the sync connector, for defer() and the schema
        _opened.append(True)


def setup() -> None:
    _open()
    app.schema_manager.apply_schema()


def reset() -> None:
    with psycopg.connect(database_url(), autocommit=True) as connection:
        connection.execute("TRUNCATE procrastinate_jobs CASCADE")


def enqueue_one(n: int) -> None:
    _open()
    insert_row.defer(n=n)  # one INSERT, autocommitted: its own transaction


def run(wait: bool) -> None:
    # Its defaults otherwise: concurrency 1, LISTEN/NOTIFY with polling as fallback.
    app.run_worker(wait=wait, install_signal_handlers=True)


if __name__ == "__main__":
    try:
        main(
            setup=setup,
            reset=reset,
            enqueue_one=enqueue_one,
            workoff=lambda: run(wait=False),
            work=lambda: run(wait=True),
        )
    finally:
        if _opened:
            app.close()
