"""Fixtures shared by every test package: real databases, real processes."""

import os
import signal
import subprocess
import sys
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
    """A child process we can signal, wait for and read the output of."""

    def __init__(self, args, env, cwd=ROOT):
        self.args = args
        self.popen = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._output = None

    @property
    def pid(self):
        return self.popen.pid

    def send_signal(self, signum):
        self.popen.send_signal(signum)

    def wait(self, timeout=60):
        """Wait for exit; returns the exit code (killing the process on timeout)."""
        try:
            self._output, _ = self.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        return self.popen.returncode

    def kill(self):
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self._output, _ = self.popen.communicate()

    @property
    def output(self):
        return self._output or ""


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
