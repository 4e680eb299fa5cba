"""Fixtures shared by every test package: real databases, real processes."""

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def _database_url_for_tests():
    """A DATABASE_URL naming the test database pytest-django created."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = settings["USER"] or ""
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    host = settings["HOST"] or "127.0.0.1"
    port = settings["PORT"] or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


@pytest.fixture
def subprocess_env(transactional_db):
    """Environment for a manage.py subprocess that shares this test's database.

    The test must commit what the subprocess is to see, hence transactional_db.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(
        DATABASE_URL=_database_url_for_tests(),
        DJANGO_SETTINGS_MODULE="tests.settings",
        PYTHONUNBUFFERED="1",
    )
    return env


class ManagedProcess:
    """A child process we can signal, wait for and read the output of.

    Output goes to a file, not a pipe: a chatty worker would block once a
    pipe's buffer filled up, while nobody reads it until the end.
    """

    def __init__(self, args, env, cwd=ROOT):
        self.args = args
        self._log = tempfile.TemporaryFile(mode="w+", prefix="managed-")  # noqa: SIM115 - lives as long as the process
        self.popen = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    @property
    def pid(self):
        return self.popen.pid

    def send_signal(self, signum):
        self.popen.send_signal(signum)

    def wait(self, timeout=60):
        """Wait for exit; returns the exit code (killing the process on timeout)."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self):
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    @property
    def output(self):
        self._log.seek(0)
        return self._log.read()


@pytest.fixture
def manage(subprocess_env):
    """Start `python manage.py ARGS...` against the test database.

    Every process still running at the end of the test is killed.
    """
    started = []

    def start(*args, env=None):
        proc = ManagedProcess(
            [sys.executable, "manage.py", *args], env={**subprocess_env, **(env or {})}
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.popen.poll() is None:
            proc.kill()
