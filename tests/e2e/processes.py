"""The app as Heroku runs it: a build, the Procfile's processes and a fresh database.

Nothing here imports the app: the processes read their configuration from the
environment, exactly as on a dyno, and this module only starts, watches and
stops them.
"""

import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import uuid4

from tests.processes import AppProcess

ROOT = Path(__file__).resolve().parents[2]
# The venv's bin directory goes first on PATH, so the Procfile's `gunicorn` and
# `python` are the ones the tests run with, as the buildpack's are on a dyno.
BIN = Path(sys.executable).parent

# What a build leaves out: local state and tooling, never app code.
NOT_IN_BUILD = shutil.ignore_patterns(
    ".git", ".venv", "staticfiles", "db.sqlite3*", "test-artifacts", "__pycache__", ".*_cache"
)


def read_postdeploy(path: Path) -> str:
    """app.json's postdeploy script: what Heroku runs once after the first deploy."""
    return json.loads(path.read_text())["scripts"]["postdeploy"]


def base_env(**config: str) -> dict[str, str]:
    """A dyno-like environment: PATH and locale plus the given config vars, nothing inherited.

    Starting from scratch keeps the developer's DATABASE_URL, EMAIL_URL or
    DJANGO_SETTINGS_MODULE (pytest-django sets it) out of the app.
    """
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update(config)
    return env


def run_once(name: str, command: str, *, env: dict, cwd: Path, logs: Path, timeout=120) -> str:
    """Run a one-off command (release phase, postdeploy) to completion; returns its output."""
    process = AppProcess(name, command, env=env, cwd=cwd, logs=logs)
    try:
        status = process.wait(timeout)
    finally:
        process.kill()
    assert status == 0, f"{name} failed with exit status {status}: {process.describe()}"
    return process.output


def build(dest: Path, logs: Path) -> Path:
    """Do what Heroku's Python buildpack does: copy the app, then collectstatic in the copy.

    Static files are collected into the copy's STATIC_ROOT with the
    production (hashed, compressed) storage, so WhiteNoise serves them as
    on a dyno and the working tree is left alone.
    """
    shutil.copytree(ROOT, dest, ignore=NOT_IN_BUILD)
    run_once(
        "collectstatic",
        "python manage.py collectstatic --no-input",
        env=base_env(),
        cwd=dest,
        logs=logs,
    )
    return dest


def postgres_server_url() -> str:
    """The PostgreSQL server to create the app's database on.

    E2E_POSTGRES_URL, else the server of a postgres DATABASE_URL, else the
    local default the README uses.
    """
    if os.environ.get("E2E_POSTGRES_URL"):
        return os.environ["E2E_POSTGRES_URL"]
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        return url.rsplit("/", 1)[0] + "/postgres"
    return "postgres://postgres@127.0.0.1:5432/postgres"


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A new, uniquely named database on ``server_url``, dropped afterwards; yields its URL."""
    import psycopg
    from psycopg import sql

    name = f"e2e_signupdemo_{os.getpid()}_{uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
