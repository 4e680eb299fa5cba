"""A fleet of real worker processes that tests can kill, restart and stop."""

import json
import signal
import time
from collections import Counter
from pathlib import Path

from django.db import connections

from jobs.models import Job, Worker
from tests.jobs.waiting import wait_for

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


class Fleet:
    def __init__(self, manage, *args, env=None):
        self.manage = manage
        self.args = args or ("jobs", "work")
        self.env = env or {}
        self.workers = []
        self.retired = []

    def start(self, count=1):
        for _ in range(count):
            self.workers.append(self.manage(*self.args, env=self.env))
        return self

    def kill_one(self, index=0):
        """SIGKILL a worker (no cleanup at all, as when a dyno is lost)."""
        worker = self.workers.pop(index)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        self.retired.append(worker)
        return worker

    def replace_dead(self):
        """Start a new worker for each one that exited, as Heroku restarts dynos."""
        for worker in list(self.workers):
            if worker.popen.poll() is not None:
                self.workers.remove(worker)
                worker.wait(timeout=10)
                self.retired.append(worker)
                self.start()

    def wait_until_up(self, timeout=30):
        """Until every worker has registered (and so handles SIGTERM)."""
        pids = {worker.pid for worker in self.workers}
        wait_for(
            lambda: set(Worker.objects.filter(pid__in=pids).values_list("pid", flat=True)) == pids,
            timeout=timeout,
            message="workers to register",
        )

    def stop(self, timeout=30):
        """SIGTERM every worker once it is up; returns their exit codes."""
        self.wait_until_up()
        for worker in self.workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(timeout=timeout) for worker in self.workers]
        self.retired.extend(self.workers)
        self.workers = []
        return codes

    @property
    def output(self):
        return "\n".join(worker.output for worker in self.retired)


def wait_until_settled(timeout, tick=None, interval=0.2):
    """Wait until no job waits or runs; ``tick()`` runs every interval."""
    deadline = time.monotonic() + timeout
    pending = Job.objects.filter(status__in=[*Job.WAITING, Job.Status.RUNNING])
    while pending.exists():
        if time.monotonic() > deadline:
            left = Counter(pending.values_list("status", flat=True))
            raise AssertionError(f"jobs still pending after {timeout}s: {left}")
        if tick:
            tick()
        time.sleep(interval)
        connections.close_all()


def save_figures(name, figures):
    """Measured figures for the README's table, under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "faults.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = figures
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
    print(f"\n{name}: {figures}")
