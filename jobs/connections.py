"""The worker's database connections: bounded waits, and a clean state between jobs.

Django opens one connection per thread. The worker's threads adjust their own
connection only (never the project's settings), so a worker embedded in a web
process leaves the request threads' connections as the project made them.
"""

import select
from contextlib import contextmanager

from django.db import connections, transaction

from .conf import jobs_settings


def bounded_options() -> dict:
    """psycopg connection options that bound every wait on the network.

    A failover or a dropped route can leave a connection waiting for a reply
    that never comes, for the kernel's TCP timeout (about 15 minutes): connect
    timeout, keepalives and TCP_USER_TIMEOUT turn that into an error within
    JOBS["DATABASE_TIMEOUT"].
    """
    timeout = jobs_settings().DATABASE_TIMEOUT
    return {
        "connect_timeout": max(2, round(timeout)),
        "keepalives": 1,
        "keepalives_idle": max(1, round(timeout / 2)),
        "keepalives_interval": max(1, round(timeout / 6)),
        "keepalives_count": 3,
        "tcp_user_timeout": round(timeout * 1000),
    }


def harden(alias: str = "default") -> None:
    """Give this thread's connection ``bounded_options()`` (PostgreSQL).

    The project's own OPTIONS win where set.
    """
    connection = connections[alias]
    if connection.vendor != "postgresql" or getattr(connection, "jobs_hardened", False):
        return
    connection.close()
    settings_dict = dict(connection.settings_dict)
    settings_dict["OPTIONS"] = {**bounded_options(), **settings_dict.get("OPTIONS", {})}
    connection.settings_dict = settings_dict
    connection.jobs_hardened = True


@contextmanager
def bounded_statements(alias: str = "default"):
    """A transaction whose statements fail after JOBS["DATABASE_TIMEOUT"].

    For the worker's own housekeeping (heartbeats, recovery), so that a lock
    or a slow plan cannot hold it up for long. SET LOCAL lasts for this
    transaction only, so it is safe through a transaction-mode pooler too.
    """
    connection = connections[alias]
    with transaction.atomic(using=alias):
        if connection.vendor == "postgresql":
            milliseconds = round(jobs_settings().DATABASE_TIMEOUT * 1000)
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {milliseconds}")
        yield


def connection_broken(alias: str = "default") -> bool:
    """Whether this thread's connection is closed or known broken."""
    raw = connections[alias].connection
    return raw is None or bool(getattr(raw, "closed", False) or getattr(raw, "broken", False))


def drop_if_stale(alias: str = "default") -> bool:
    """Close this thread's connection if the server has hung up on it.

    An idle connection has nothing to read unless the server closed it (a
    restart, a failover, an idle timeout): it then sends a notice, or the
    socket reads as end-of-file. One poll of the socket, no round trip, so it
    is cheap enough before every job; otherwise the next job's first query
    would fail on the dead connection.
    """
    connection = connections[alias]
    raw = connection.connection
    if connection.vendor != "postgresql" or raw is None or connection.in_atomic_block:
        return False
    try:
        stale = raw.closed or bool(select.select([raw.fileno()], [], [], 0)[0])
    except (OSError, ValueError):
        stale = True
    if stale:
        connection.close()
    return stale


def transaction_state(alias: str = "default") -> tuple[int, bool]:
    """How deep in ``atomic()`` this thread's connection is, and its autocommit."""
    connection = connections[alias]
    if connection.connection is None:
        return 0, True
    return len(connection.atomic_blocks), bool(connection.autocommit)


def discard_open_transaction(before: tuple[int, bool] = (0, True), alias="default") -> bool:
    """Roll back a transaction that job code left open; True if there was one.

    ``before`` is ``transaction_state()`` from before the job. Job code may
    turn autocommit off and return, or be interrupted inside ``atomic()``'s
    own bookkeeping: either way the connection would carry the transaction
    into the next job, whose writes would then never commit. A worker's
    connection (``before`` clean) is closed, which rolls back on the server,
    and Django's state for it becomes that of a fresh connection. A caller's
    own transaction (a test around ``work_off``) is left for the caller.
    """
    connection = connections[alias]
    if transaction_state(alias) == before:
        return False
    if before == (0, True):
        connection.in_atomic_block = False
        connection.savepoint_ids = []
        connection.atomic_blocks = []
        connection.needs_rollback = False
        connection.run_on_commit = []
        connection.close()
    return True
