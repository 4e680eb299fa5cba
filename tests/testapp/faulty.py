"""Job targets that misbehave, for the fault-injection suite (tests/faults)."""

import os
import sys
import time

from django.db import transaction

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


# -- job code that misbehaves towards the worker itself ----------------------------


def exits(code=3):
    sys.exit(code)


def interrupts():
    raise KeyboardInterrupt


class CustomBaseException(BaseException):
    """Neither an Exception nor one of the worker's own interruptions."""


def raises_base_exception():
    raise CustomBaseException("not an Exception")


def leaves_autocommit_off():
    transaction.set_autocommit(False)
    record("uncommitted")


class UnprintableError(Exception):
    def __str__(self):
        raise ValueError("cannot print me")


def raises_unprintable():
    raise UnprintableError()


def fails_with_nul():
    raise RuntimeError("a NUL \x00 in the message")


def returns_nul():
    return {"text": "a\x00b", "key\x00": ["\x00"]}


def records(n):
    record("recorded", n=n)


def fails_always():
    raise RuntimeError("always")


class FailsForGood:
    """Fails its only attempt."""

    max_attempts = 1

    def perform(self):
        raise RuntimeError("for good")


class GilHog:
    """Holds the GIL in one C call for about ``seconds``: no other thread of
    its process, heartbeat included, runs meanwhile."""

    def __init__(self, seconds):
        self.seconds = seconds

    def perform(self):
        record("started", key="gil", pid=os.getpid())
        sample = 2_000_000
        began = time.perf_counter()
        sum(range(sample))
        rate = sample / max(time.perf_counter() - began, 1e-9)
        began = time.perf_counter()
        sum(range(int(rate * self.seconds)))  # one C call, GIL held throughout
        return round(time.perf_counter() - began, 1)


class StuckInTransaction:
    """Stuck in C code inside a transaction: on SQLite it holds the write lock."""

    max_run_time = 1
    max_attempts = 1

    def perform(self):
        with transaction.atomic():
            record("started", key="stuck-in-transaction", pid=os.getpid())
            time.sleep(3600)


class QuickJob:
    """Starts, waits a little (long enough for a test to lock its row), ends."""

    max_run_time = 1

    def __init__(self, seconds=0.3):
        self.seconds = seconds

    def perform(self):
        record("started", key="quick", pid=os.getpid())
        time.sleep(self.seconds)
        return "done"


class SlowErrorHook:
    """Its error hook (run when it is recovered from a dead worker) is slow."""

    def __init__(self, seconds):
        self.seconds = seconds

    def perform(self):
        return None

    def error(self, job, exc):
        record("slow_hook_started", pid=os.getpid())
        time.sleep(self.seconds)
        record("slow_hook_finished", pid=os.getpid())


class RecordOnce:
    """Writes to the database; one attempt only."""

    max_attempts = 1

    def __init__(self, n):
        self.n = n

    def perform(self):
        record("executed", n=self.n, pid=os.getpid())


class SleepsWithoutTheDatabase:
    """Records its start, then only sleeps: an outage meanwhile cannot fail it."""

    def __init__(self, key, seconds):
        self.key, self.seconds = key, seconds

    def perform(self):
        record("started", key=self.key, pid=os.getpid())
        time.sleep(self.seconds)
        return os.getpid()
