"""Small helpers shared by the suites that start the app's own processes."""

import os
import signal
import socket
import subprocess
import time
from contextlib import suppress
from pathlib import Path


def read_procfile(path: Path) -> dict[str, str]:
    """The Procfile's process types and their commands, as Heroku reads them."""
    commands = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, colon, command = line.partition(":")
        if not colon or not name.strip().isidentifier():
            raise ValueError(f"{path}: not a `name: command` line: {line!r}")
        commands[name.strip()] = command.strip()
    return commands


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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

    def stop(self, timeout: float = 30) -> int:
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
