"""The threads that run job code: a pool's executors, and the hook thread.

An executor takes claims from its pool's inbox and runs them, each on the
thread's own database connection, checked before every job and cleaned after
it. Nothing a job does ends the thread: what job code raises is its failed
attempt, and an error of the worker's own is logged and counted, never fatal.
"""

import logging
import queue
import threading
import time

from django.db import close_old_connections, connections

from .claims import Claim, State
from .connections import drop_if_stale, harden
from .running import fail_attempt, max_run_time_for, release, run_claimed_job

logger = logging.getLogger("jobs")


class Executor:
    """One thread of a pool. ``worker`` is the WorkerLoop it serves."""

    def __init__(self, worker, pool, number: int):
        self.worker, self.pool = worker, pool
        self.thread = threading.Thread(target=self._run, name=f"jobs-{pool}-{number}", daemon=True)

    def start(self) -> "Executor":
        self.thread.start()
        return self

    def _run(self) -> None:
        harden()
        inbox = self.worker.inboxes[self.pool]
        next_connection_check = 0.0
        try:
            while (claim := inbox.get()) is not None:
                # Like a request boundary: drop a connection the server hung
                # up on (one poll of its socket); after an error, and every so
                # often, one that is broken or too old (Django's check may
                # cost a query, so not before every job).
                drop_if_stale()
                if (
                    time.monotonic() >= next_connection_check
                    or connections["default"].errors_occurred
                ):
                    close_old_connections()
                    next_connection_check = time.monotonic() + self.worker.config.HEARTBEAT_INTERVAL
                try:
                    self._handle(claim)
                except BaseException as exc:  # a bug of ours: the thread lives on
                    if claim.state is State.RUNNING and self.worker.holdings.holds(claim):
                        self.worker.finished(claim, self._failed_to_run(claim, exc), None)
        finally:
            connections.close_all()

    def _handle(self, claim: Claim) -> None:
        worker = self.worker
        now = worker.monotonic()
        if worker.may_start(claim) and worker.holdings.take(
            claim,
            State.RUNNING,
            thread=self.thread,
            started_at=now,
            deadline=now + max_run_time_for(claim.job),
        ):
            try:
                outcome = run_claimed_job(
                    claim.job,
                    claim.interruptible,
                    worker.clock.now,
                    worker.record_success,
                    worker.past_exit_deadline,
                )
            except Exception as exc:
                outcome = self._failed_to_run(claim, exc)
            if outcome == "unrecorded":
                return  # still held: recovery takes it once this process is gone
            worker.finished(claim, outcome, worker.monotonic() - now)
        elif worker.holdings.take(claim, State.RETURNING):
            # Read ahead but not to be started (the worker stops, or cannot
            # prove its lease alive): back to the queue, no attempt spent.
            released = release(claim.job, worker.clock.now(), worker.past_exit_deadline)
            worker.finished(claim, "released" if released else "lost", None)
        # else the dispatcher gave it back first

    def _failed_to_run(self, claim: Claim, exc: BaseException) -> str:
        """Only a bug of ours, an outcome the database refused, or the database
        failing past all retries gets here: count the attempt, so that a job
        cannot come back forever uncounted. Keep trying while the worker
        lives; the claim stays held meanwhile (nobody else may take it).
        Past the exit deadline, crash recovery counts it instead."""
        logger.error("job=%s outcome could not be recorded: %r", claim.job.pk, exc)
        delay = 0.25
        while True:
            close_old_connections()
            try:
                return fail_attempt(
                    claim.job,
                    exc,
                    now=self.worker.clock.now(),
                    give_up=self.worker.past_exit_deadline,
                )
            except Exception:
                if self.worker.past_exit_deadline():
                    logger.exception("job=%s left to crash recovery", claim.job.pk)
                    return "unrecorded"
                logger.exception("job=%s failure not recorded; retrying", claim.job.pk)
                time.sleep(delay)
                delay = min(delay * 2, self.worker.config.RECONNECT_DELAY)


class HookThread:
    """Runs hooks that belong to no executor (those of jobs recovered from dead
    workers), so that a slow hook never holds up the heartbeat or claims."""

    def __init__(self):
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="jobs-hooks", daemon=True)

    def start(self) -> "HookThread":
        self.thread.start()
        return self

    def submit(self, function, *args) -> None:
        self._calls.put((function, args))

    def stop(self, timeout: float) -> None:
        self._calls.put(None)
        self.thread.join(timeout)

    def _run(self) -> None:
        try:
            while (call := self._calls.get()) is not None:
                function, args = call
                try:
                    function(*args)
                except BaseException:
                    logger.exception("hook %s failed", getattr(function, "__name__", function))
        finally:
            connections.close_all()
