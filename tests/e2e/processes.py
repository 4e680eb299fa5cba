"""The app as Heroku runs it: a build, the Procfile's processes and a fresh database.

Nothing here imports the app: the processes read their configuration from the
environment, exactly as on a dyno, and this module only starts, watches and
stops them.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from uuid import uuid4

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


class AppProcess:
    """One process started from a Procfile-style command, its output kept in a log file.

    Commands run under bash, as on a dyno, in their own process group, so that
    signals reach every process of the "dyno" (gunicorn's workers too), as
    Heroku's do.
    """

    def __init__(self, name: str, command: str, *, env: dict, cwd: Path, logs: Path):
        self.name = name
        self.command = command
        self.log_path = logs / f"{name}.log"
        self._log = self.log_path.open("w")
        self.popen = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def describe(self) -> str:
        return f"{self.name} (`{self.command}`), log {self.log_path}:\n{self.output[-4000:]}"

    def wait_for_output(self, text: str, timeout: float) -> None:
        """Wait until the process logs ``text``; fail at once if it exits first."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.popen.returncode} before logging "
                    f"{text!r}: {self.describe()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name} did not log {text!r} in {timeout}s: {self.describe()}"
                )
            time.sleep(0.05)

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running after {timeout}s: {self.describe()}"
            ) from None

    def stop(self, timeout: float) -> int:
        """SIGTERM, as Heroku sends at shutdown; returns the exit status."""
        self._signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the whole group, whatever state it is in."""
        self._signal(signal.SIGKILL)
        try:
            self.popen.wait(timeout=10)
        finally:
            self._log.close()

    def _signal(self, signum: int) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)


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
