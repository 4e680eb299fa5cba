"""The command line every Python driver shares (stdlib only: peers' venvs run it).

``DRIVER setup | reset | enqueue COUNT | enqueue-stdin | workoff | work``, with
BENCH_DATABASE_URL naming the system's own database:

- setup: create the system's schema; reset: empty its queue tables;
- enqueue COUNT: COUNT jobs one by one, each its own transaction; prints
  ``{"seconds": ...}`` (the loop alone, start-up excluded);
- enqueue-stdin: for each number read from stdin, enqueue that job, then print
  time.time() once it is committed (the pickup measurement's start);
- workoff: run jobs until none is left, then exit; work: run until SIGTERM.

Job number n inserts n into bench_done (the scratch table the harness made).
"""

import json
import os
import sys
import time
from collections.abc import Callable

INSERT_SQL = "INSERT INTO bench_done (n) VALUES (%s)"


def database_url() -> str:
    return os.environ["BENCH_DATABASE_URL"]


def timed_enqueue(enqueue_one: Callable[[int], None], count: int) -> None:
    started = time.perf_counter()
    for number in range(count):
        enqueue_one(number)
    print(json.dumps({"seconds": time.perf_counter() - started}), flush=True)


def enqueue_from_stdin(enqueue_one: Callable[[int], None]) -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        enqueue_one(int(line))
        print(f"{time.time():.6f}", flush=True)


def main(
    *,
    setup: Callable[[], None],
    reset: Callable[[], None],
    enqueue_one: Callable[[int], None],
    workoff: Callable[[], None],
    work: Callable[[], None],
) -> None:
    action, *rest = sys.argv[1:]
    if action == "setup":
        setup()
    elif action == "reset":
        reset()
    elif action == "enqueue":
        timed_enqueue(enqueue_one, int(rest[0]))
    elif action == "enqueue-stdin":
        enqueue_from_stdin(enqueue_one)
    elif action == "workoff":
        workoff()
    elif action == "work":
        work()
    else:
        raise SystemExit(f"unknown action {action!r}")
