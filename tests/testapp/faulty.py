"""Job targets that misbehave, for the fault-injection suite (tests/faults)."""

import os
import time

from .models import Event


def record(name, **data):
    Event.objects.create(name=name, data=data)


class CountedJob:
    """Records each execution, so duplicates and losses can be counted."""

    def __init__(self, n, seconds=0.0):
        self.n = n
        self.seconds = seconds

    def perform(self):
        if self.seconds:
            time.sleep(self.seconds)
        record("executed", n=self.n, pid=os.getpid())


class WorkerKiller:
    """Takes its whole worker process down, every time."""

    max_attempts = 3

    def perform(self):
        record("killer", pid=os.getpid())
        os._exit(137)


class MemoryHog:
    max_attempts = 1

    def perform(self):
        return len(bytearray(10**14))  # 100 TB: refused by the allocator


class BusyJob:
    """Runs until interrupted (pure Python, so interruptible)."""

    max_run_time = 1

    def __init__(self, key="busy"):
        self.key = key

    def perform(self):
        record("started", key=self.key, pid=os.getpid())
        while True:
            time.sleep(0.02)


class StuckJob:
    """Stuck in a single C call: no Python-level interruption reaches it."""

    max_run_time = 1
    max_attempts = 1

    def perform(self):
        record("started", key="stuck", pid=os.getpid())
        time.sleep(3600)


class SlowFirstAttempt:
    """The first attempt takes its time (to be stalled); later ones are quick."""

    def __init__(self, seconds):
        self.seconds = seconds

    def perform(self):
        attempt = Event.objects.filter(name="slow_first").count() + 1
        record("slow_first", attempt=attempt, pid=os.getpid())
        if attempt == 1:
            time.sleep(self.seconds)
        return f"attempt {attempt} pid {os.getpid()}"
