"""What the bench's jobs run, imported by the workers (JOBS["ALLOWED_MODULES"])."""

import os
import socket
import time

#: Where record_start() reports to: "host:port" of the bench's UDP socket.
PICKUP_ADDRESS_ENV = "BENCH_PICKUP_ADDRESS"


def noop(number: int) -> None:
    """The cheapest job there is: enqueue cost without any work."""


class NoopJob:
    """A job object for enqueue_many: does nothing."""

    def __init__(self, number: int):
        self.number = number

    def perform(self) -> None:
        return None


class SleepJob:
    """An I/O-bound job: waits like an SMTP call would."""

    def __init__(self, number: int, seconds: float):
        self.number = number
        self.seconds = seconds

    def perform(self) -> None:
        time.sleep(self.seconds)


def record_start(number: int) -> None:
    """Send (number, time.time()) to the bench the moment the job starts.

    A UDP datagram rather than a row: the bench blocks on its socket instead of
    polling the database, so measuring adds no load to the worker.
    """
    host, _, port = os.environ[PICKUP_ADDRESS_ENV].rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(f"{number} {time.time():.6f}".encode(), (host, int(port)))


class KeyedNoopJob(NoopJob):
    """A no-op job that shares a concurrency key (limit 1) with others."""

    def __init__(self, number: int, key: str):
        super().__init__(number)
        self.key = key

    def concurrency_key(self) -> str:
        return self.key
