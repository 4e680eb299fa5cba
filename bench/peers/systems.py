"""The systems compared, how to start each one's driver, and why one may be skipped."""

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
PEERS_VENV = ROOT / ".venv-peers"
PEERS_PYTHON = PEERS_VENV / "bin" / "python"
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class System:
    key: str  # also the suffix of its scratch database
    title: str
    command: tuple[str, ...]  # the driver, without its action
    #: Longest an idle worker sleeps before looking again: the pickup
    #: measurement spreads enqueues over it so they land at a random phase.
    poll_interval: float

    def argv(self, *action: str) -> list[str]:
        return [*self.command, *action]


def _peer_python_has(module: str) -> str:
    """'' when .venv-peers imports ``module``, else why not."""
    if not PEERS_PYTHON.exists():
        return f"no {PEERS_VENV.name} (`make bench-peers` creates it)"
    found = subprocess.run([str(PEERS_PYTHON), "-c", f"import {module}"], capture_output=True)
    return "" if found.returncode == 0 else f"{module} is not installed in {PEERS_VENV.name}"


_DEBIAN_PACKAGES = "apt-get install ruby-delayed-job-active-record ruby-pg"


def _ruby_delayed_job() -> str:
    if shutil.which("ruby") is None:
        return f"no ruby ({_DEBIAN_PACKAGES})"
    script = "require 'delayed_job_active_record'; require 'pg'"
    found = subprocess.run(["ruby", "-e", script], capture_output=True)
    if found.returncode:
        return f"ruby lacks delayed_job_active_record or pg ({_DEBIAN_PACKAGES})"
    return ""


OURS = System("jobs", "jobs", (sys.executable, "-m", "bench.peers.driver_ours"), 0.6)
PEERS = {
    "tasksdb": (
        System(
            "tasksdb",
            "django-tasks-db",
            (str(PEERS_PYTHON), "-m", "bench.peers.driver_tasksdb"),
            1.0,
        ),
        lambda: _peer_python_has("django_tasks_db"),
    ),
    "procrastinate": (
        System(
            "procrastinate",
            "Procrastinate",
            (str(PEERS_PYTHON), "-m", "bench.peers.driver_procrastinate"),
            0.6,
        ),
        lambda: _peer_python_has("procrastinate"),
    ),
    "delayed_job": (
        System("dj", "delayed_job", ("ruby", str(HERE / "driver_delayed_job.rb")), 5.0),
        _ruby_delayed_job,
    ),
}


def available(names: list[str]) -> tuple[list[System], list[str]]:
    """(systems to run, ours first; one 'peer: reason' line per skipped peer)."""
    systems, skipped = [OURS], []
    for name in names:
        system, missing = PEERS[name]
        reason = missing()
        if reason:
            skipped.append(f"{system.title} skipped: {reason}")
        else:
            systems.append(system)
    return systems, skipped
