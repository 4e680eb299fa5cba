"""Throwaway databases for one bench run, always removed afterwards.

PostgreSQL: a freshly created, uniquely named database on the local server
(``--postgres-url`` names the server and a maintenance database to connect
to); dropped WITH (FORCE) at the end, so a stray connection cannot keep it
alive. SQLite: a file in the run's temporary directory, opened by every
process with the site's OPTIONS (WAL, IMMEDIATE transactions).
"""

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test"
NAME_PREFIX = "jobs_bench_"
_NAME = re.compile(rf"^{NAME_PREFIX}(\d+)_[0-9a-f]+$")


def _check_local(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit(f"The bench only targets the local machine, not {host!r}.")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drop_abandoned(admin) -> list[str]:
    """Drop bench databases whose creating process is dead (a SIGKILLed run)."""
    names = admin.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s", [f"{NAME_PREFIX}%"]
    ).fetchall()
    dropped = []
    for (name,) in names:
        match = _NAME.match(name)
        if match and not _pid_alive(int(match.group(1))):
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            dropped.append(name)
    return dropped


@contextlib.contextmanager
def postgres_database(server_url: str = DEFAULT_POSTGRES_URL) -> Iterator[str]:
    """Create a uniquely named database; yield its URL; drop it whatever happens."""
    _check_local(server_url)
    name = f"{NAME_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        drop_abandoned(admin)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextlib.contextmanager
def sqlite_database(workdir: Path) -> Iterator[str]:
    """A fresh SQLite file (and its WAL files), deleted at the end."""
    path = workdir / f"bench-{secrets.token_hex(4)}.sqlite3"
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def bench_database(engine: str, workdir: Path, postgres_url: str):
    """The context manager for ``engine`` ("sqlite" or "postgres")."""
    if engine == "postgres":
        return postgres_database(postgres_url)
    return sqlite_database(workdir)
