"""Child processes the bench starts: manage.py commands and gunicorn.

Each process logs to a file (never a pipe nobody reads) and is stopped by the
ProcessGroup that started it, whatever happens. They stay in the bench
runner's process group, so the parent's last-resort SIGKILL of that group
reaches them too.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class BenchProcessError(RuntimeError):
    """A process the bench started failed or misbehaved."""


class ManagedProcess:
    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path):
        self.name = name
        self.log_path = logs / f"{name}.log"
        self._log = self.log_path.open("w")
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def describe(self) -> str:
        status = self.popen.poll()
        return f"{self.name} (exit {status}), log {self.log_path}:\n{self.output[-3000:]}"

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float) -> int:
        """Wait for exit; a process still running after ``timeout`` is killed and reported."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchProcessError(f"{self.name} still running after {timeout:g}s") from None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (a worker finishes its jobs, gunicorn its requests), then SIGKILL."""
        if self.running():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.popen.returncode

    def kill(self) -> None:
        if self.running():
            self.popen.kill()
            self.popen.wait(timeout=10)
        self._log.close()


class ProcessGroup:
    """Starts processes and guarantees they are all gone when the block ends."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env = env
        self.logs = logs
        self.processes: list[ManagedProcess] = []
        self._count = 0

    def __enter__(self) -> "ProcessGroup":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop_all()

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None):
        self._count += 1
        process = ManagedProcess(
            f"{self._count:03d}-{name}", args, {**self.env, **(env or {})}, self.logs
        )
        self.processes.append(process)
        return process

    def manage(self, name: str, *args: str, env: dict[str, str] | None = None):
        """Start ``python manage.py ARGS`` against the bench database."""
        return self.start(name, [sys.executable, "manage.py", *args], env)

    def stop_all(self, timeout: float = 30.0) -> None:
        for process in self.processes:
            if process.running():
                process.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            process.stop(timeout=max(0.1, deadline - time.monotonic()))
        self.processes.clear()


def install_termination_handler() -> None:
    """Turn SIGTERM into SystemExit, so finally blocks and context managers clean up."""

    def handle(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handle)


def bench_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of every process the bench starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))}
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="bench.settings",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    for name in ("EMAIL_URL", "MAILGUN_SMTP_SERVER", "JOBS_DELAY_JOBS", "TRUSTED_PROXY_HOPS"):
        env.pop(name, None)
    env.update(extra)
    return env
