"""The worker loop: claim due jobs, hand them to threads, heartbeat, stop cleanly.

One supervisor thread (the process's main thread under ``jobs work``) claims
jobs, heartbeats, recovers dead workers' jobs and watches deadlines. Pools of
executor threads run the jobs, each thread with its own database connection
kept open across jobs. On PostgreSQL a listener thread wakes the supervisor
as soon as a job is enqueued. Signals only set flags; the supervisor acts.
"""

import logging
import math
import os
import queue as queue_module
import secrets
import signal
import socket
import threading
import time
from dataclasses import dataclass, field

from django.db import DatabaseError, close_old_connections, connections
from django.db.models import Min
from django.db.models.functions import Now

from . import maintenance
from .claiming import PROMOTE_BATCH, claim_due_jobs, promote_due_jobs
from .clock import DatabaseClock
from .conf import jobs_settings
from .finishing import SuccessRecorder
from .listening import NotificationListener, listen_supported
from .models import Job, Worker
from .running import (
    Interruptible,
    JobTimeout,
    WorkerShutdown,
    fail_attempt,
    max_run_time_for,
    release,
    run_claimed_job,
)

logger = logging.getLogger("jobs")

#: Seconds a job thread gets to react to an interruption before the
#: supervisor records the outcome itself and gives up on the thread.
INTERRUPT_GRACE = 5.0
#: Longest pause between retries while the database is unreachable.
MAX_RECONNECT_DELAY = 10.0
#: A pool whose jobs take less than this on average claims jobs ahead of its
#: threads, so a thread never waits for the next claim. Longer jobs are not
#: read ahead: a job queued behind a slow one would wait while others idle.
READ_AHEAD_BELOW = 0.1
#: How much work (by the average duration) a thread's read-ahead holds, and
#: the most jobs that may be. Enough to claim and record short jobs in
#: batches; little enough that a worker never hoards more than a blink of work
#: that another worker could have run sooner.
READ_AHEAD_SECONDS = 0.05
MAX_READ_AHEAD = 25
#: Seconds between promotions of scheduled jobs that came due while the
#: worker was busy (an idle worker wakes for the next one on time).
PROMOTE_INTERVAL = 1.0
#: Weight of the latest duration in the moving average of job durations.
DURATION_SMOOTHING = 0.2


@dataclass(frozen=True)
class Pool:
    """Threads that serve some queues (``()``: every queue), as delayed_job's --pool."""

    queues: tuple[str, ...] = ()
    size: int = 1

    def __str__(self):
        return f"{','.join(self.queues) or '*'}:{self.size}"


@dataclass(frozen=True)
class WorkerOptions:
    pools: tuple[Pool, ...] = (Pool(),)
    min_priority: int | None = None
    max_priority: int | None = None
    sleep_delay: float | None = None  # None: the JOBS setting that applies
    exit_on_complete: bool = False
    listen: bool | str | None = None  # None: JOBS["LISTEN_URL"]

    @property
    def queues(self) -> tuple[str, ...]:
        """Every queue served, or () when some pool serves them all."""
        if any(not pool.queues for pool in self.pools):
            return ()
        return tuple(sorted({q for pool in self.pools for q in pool.queues}))

    @property
    def concurrency(self) -> int:
        return sum(pool.size for pool in self.pools)


@dataclass
class _Running:
    """A claimed job, queued for or running in an executor thread."""

    job: Job
    pool: Pool
    started: bool = False
    deadline: float = math.inf  # set when a thread starts it
    interruptible: Interruptible = field(default_factory=Interruptible)
    interrupted_at: float | None = None
    interrupted_with: type | None = None


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class WorkerLoop:
    def __init__(self, options: WorkerOptions = WorkerOptions()):
        self.options = options
        self.config = jobs_settings()
        self.name = worker_name()
        self.clock = DatabaseClock()
        self._record_success = SuccessRecorder()
        listen = self.config.LISTEN_URL if options.listen is None else options.listen
        self.listener = (
            NotificationListener(listen, self._notified) if listen_supported(listen) else None
        )
        default_sleep = self.config.SLEEP_DELAY if self.listener else self.config.POLL_INTERVAL
        self.sleep_delay = options.sleep_delay if options.sleep_delay is not None else default_sleep
        self.counts = {"succeeded": 0, "failed": 0, "retry": 0, "released": 0, "lost": 0}
        self._wake = threading.Event()
        self._stopping = False
        self._hurry = False  # a second Ctrl-C: interrupt running jobs now
        self._stop_requested_at = None
        self._inboxes = {pool: queue_module.SimpleQueue() for pool in options.pools}
        self._running: dict[int, _Running] = {}  # by job id
        self._lock = threading.Lock()
        self._threads: list[tuple[Pool, threading.Thread]] = []
        self._stuck = dict.fromkeys(options.pools, 0)  # threads lost to stuck jobs
        self._average_duration = dict.fromkeys(options.pools)  # seconds, moving average
        self._next_heartbeat = 0.0
        self._next_maintenance = 0.0
        self._next_promotion = 0.0
        self._next_due = None  # monotonic time the next scheduled job comes due
        self._reconnect_delay = 0.5
        self._registered = False

    # -- lifecycle ----------------------------------------------------------------

    def run(self) -> int:
        """Work until stopped; returns the process exit status."""
        for pool in self.options.pools:
            for number in range(pool.size):
                thread = threading.Thread(
                    target=self._executor, args=(pool,), name=f"jobs-{pool}-{number}", daemon=True
                )
                thread.start()
                self._threads.append((pool, thread))
        if self.listener:
            self.listener.start()
        logger.info(
            "worker=%s started pools=%s wake=%s",
            self.name,
            " ".join(map(str, self.options.pools)),
            "listen" if self.listener else f"poll:{self.sleep_delay:g}s",
        )
        status = 0
        try:
            while not (self._stopping and not self._running):
                self._tick()
                if not self._stopping and all(
                    self._stuck[pool] >= pool.size for pool in self.options.pools
                ):
                    logger.error("worker=%s every thread is stuck in a job; exiting", self.name)
                    status = 1
                    break
        finally:
            self._shutdown()
        return status

    def request_stop(self, hurry=False) -> None:
        """Stop claiming; let running jobs finish (or, hurried, put them back)."""
        if self._stopping:
            hurry = True
        self._stopping = True
        self._hurry = self._hurry or hurry
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
        self._wake.set()

    def install_signal_handlers(self) -> None:
        def handle(signum, frame):
            logger.info("worker=%s received %s; stopping", self.name, signal.Signals(signum).name)
            self.request_stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def _notified(self, queue: str) -> None:
        served = self.options.queues
        if not queue or not served or queue in served:
            self._wake.set()

    # -- the supervisor's tick ------------------------------------------------------

    def _tick(self) -> None:
        self._wake.clear()
        try:
            now = time.monotonic()
            if now >= self._next_heartbeat:
                self._heartbeat()
                self._next_heartbeat = now + self.config.HEARTBEAT_INTERVAL
            if now >= self._next_maintenance:
                with self._lock:
                    held = list(self._running)
                maintenance.release_unknown_claims(self.name, held, self.clock.now())
                maintenance.recover_abandoned_jobs(self.clock.now())
                maintenance.prune_succeeded(self.clock.now())
                self._next_maintenance = now + self.config.HEARTBEAT_INTERVAL
            next_due = self._next_due if self._next_due is not None else math.inf
            if now >= min(self._next_promotion, next_due):
                self._promote(now)
            claimed, looked = self._claim()
            if looked and not claimed:
                self._next_due = self._next_scheduled()
            finished = (
                self.options.exit_on_complete and looked and not claimed and not self._running
            )
            if finished and self._promote(now):
                return  # scheduled jobs came due since the last promotion: run them too
            self._reconnect_delay = 0.5
        except DatabaseError as exc:
            self._wait_for_database(exc)
            return
        self._watch_deadlines()
        if claimed:
            return
        if finished:
            logger.info("worker=%s no more due jobs; exiting", self.name)
            self.request_stop()
            return
        self._wake.wait(self._next_wait())

    def _next_wait(self) -> float:
        now = time.monotonic()
        waits = [self.sleep_delay, self._next_heartbeat - now]
        if self._next_due is not None:
            waits.append(self._next_due - now)
        with self._lock:
            waits.extend(r.deadline - now for r in self._running.values())
        if self._stopping:
            waits.append(0.2)
        return max(0.001, min(waits))

    def _promote(self, now: float) -> int:
        """Make scheduled jobs that came due ready; returns how many."""
        promoted = len(promote_due_jobs())
        # A full batch means more are due: promote again on the next tick.
        self._next_promotion = now if promoted >= PROMOTE_BATCH else now + PROMOTE_INTERVAL
        self._next_due = None
        return promoted

    def _claim(self) -> tuple[int, bool]:
        """Fill free threads; returns (jobs claimed, whether any thread was free)."""
        if self._stopping:
            return 0, False
        claimed, looked = 0, False
        for pool in self.options.pools:
            with self._lock:
                held = sum(1 for r in self._running.values() if r.pool is pool)
            capacity = self._capacity(pool)
            free = capacity - held
            if free <= 0 or free < capacity - self._live_threads(pool) * 2:
                # Read-ahead refills in batches, once its threads are down to
                # about two jobs each: one claim for many jobs, none idle.
                continue
            looked = True
            jobs = claim_due_jobs(
                worker_name=self.name,
                limit=free,
                queues=pool.queues,
                min_priority=self.options.min_priority,
                max_priority=self.options.max_priority,
            )
            for job in jobs:
                entry = _Running(job, pool)
                with self._lock:
                    self._running[job.pk] = entry
                self._inboxes[pool].put(entry)
            claimed += len(jobs)
        return claimed, looked

    def _live_threads(self, pool: Pool) -> int:
        return pool.size - self._stuck[pool]

    def _capacity(self, pool: Pool) -> int:
        """Jobs this pool may hold: one per live thread, more for short jobs."""
        threads = self._live_threads(pool)
        average = self._average_duration[pool]
        if average is None or average >= READ_AHEAD_BELOW:
            return threads
        per_thread = min(MAX_READ_AHEAD, max(2, int(READ_AHEAD_SECONDS / max(average, 1e-6))))
        return threads * per_thread

    def _next_scheduled(self) -> float | None:
        """When the next waiting job comes due, so we wake for it, not at the next poll.

        Only jobs still in the future count: one already due that we did not
        claim (its queue paused, its priority out of our range) must not make
        us wake again at once, in a loop. Ready jobs count too: one enqueued
        by a web process whose clock runs ahead of the database's is ready
        but not yet due. One query per status, so each reads the first entry
        of its own partial index on run_at.
        """
        now = self.clock.now()
        soonest = [
            Job.objects.filter(status=status, run_at__gt=now)
            .for_queues(self.options.queues)
            .in_priority_range(self.options.min_priority, self.options.max_priority)
            .aggregate(next=Min("run_at"))["next"]
            for status in Job.WAITING
        ]
        next_run_at = min(filter(None, soonest), default=None)
        if next_run_at is None:
            return None
        return time.monotonic() + (next_run_at - now).total_seconds()

    def _heartbeat(self) -> None:
        self.clock.sync()
        if not self._registered:
            self._register()
            return
        updated = Worker.objects.filter(name=self.name).update(last_heartbeat_at=Now())
        if not updated:
            # We were presumed dead (stalled past the timeout): our claims are
            # void, and guarded writes will discard their outcomes.
            logger.warning("worker=%s heartbeat row was gone; registering again", self.name)
            self._register()

    def _register(self) -> None:
        Worker.objects.update_or_create(
            name=self.name,
            defaults={
                "hostname": socket.gethostname(),
                "pid": os.getpid(),
                "queues": list(self.options.queues),
                "concurrency": self.options.concurrency,
                "last_heartbeat_at": self.clock.now(),
            },
        )
        self._registered = True

    def _wait_for_database(self, exc: Exception) -> None:
        delay = self._reconnect_delay
        logger.warning("worker=%s database error: %s; retrying in %.1fs", self.name, exc, delay)
        connections["default"].close()
        self._wake.wait(delay)
        self._reconnect_delay = min(delay * 2, MAX_RECONNECT_DELAY)
        self._next_heartbeat = 0.0

    # -- deadlines and shutdown -----------------------------------------------------------

    def _watch_deadlines(self) -> None:
        now = time.monotonic()
        shutdown_due = self._stopping and (
            self._hurry or now - self._stop_requested_at >= self.config.SHUTDOWN_TIMEOUT
        )
        with self._lock:
            entries = list(self._running.values())
        for entry in entries:
            if not entry.started:
                # Read ahead, not started: its thread puts it back when it gets
                # to it, or we do once shutdown is due (its thread may be stuck).
                if shutdown_due:
                    release(entry.job, self.clock.now())
                    with self._lock:
                        self._running.pop(entry.job.pk, None)
                continue
            if entry.interrupted_at is None:
                if shutdown_due:
                    self._interrupt(entry, WorkerShutdown, now)
                elif now >= entry.deadline:
                    self._interrupt(entry, JobTimeout, now)
            elif now - entry.interrupted_at >= INTERRUPT_GRACE:
                self._abandon(entry, shutdown_due)

    def _interrupt(self, entry: _Running, exception_class, now) -> None:
        entry.interrupted_at = now
        entry.interrupted_with = exception_class
        entry.deadline = now + INTERRUPT_GRACE
        logger.warning("job=%s interrupting with %s", entry.job.pk, exception_class.__name__)
        entry.interruptible.interrupt(exception_class)

    def _abandon(self, entry: _Running, shutting_down: bool) -> None:
        """The job's thread ignored its interruption (stuck in C code, say):
        record the outcome ourselves and stop counting on that thread."""
        job = entry.job
        if entry.interrupted_with is WorkerShutdown or shutting_down:
            release(job, self.clock.now())
        else:
            error = JobTimeout("ignored its max_run_time interruption")
            fail_attempt(job, error, now=self.clock.now())
        with self._lock:
            self._running.pop(job.pk, None)
        self._stuck[entry.pool] += 1
        logger.error("job=%s thread did not stop; outcome recorded by the supervisor", job.pk)

    def _shutdown(self) -> None:
        if self.listener:
            self.listener.stop()
        for pool, _thread in self._threads:
            self._inboxes[pool].put(None)
        with self._lock:
            leftovers = list(self._running.values())
        for entry in leftovers:  # e.g. after an exception in the loop itself
            try:
                release(entry.job, self.clock.now())
            except DatabaseError:
                logger.exception("job=%s could not be released", entry.job.pk)
        try:
            Worker.objects.filter(name=self.name).delete()
        except DatabaseError:
            logger.exception("worker=%s could not unregister", self.name)
        counts = " ".join(f"{k}={v}" for k, v in self.counts.items())
        logger.info("worker=%s stopped %s", self.name, counts)

    # -- executor threads -----------------------------------------------------------------

    def _executor(self, pool: Pool) -> None:
        inbox = self._inboxes[pool]
        next_connection_check = 0.0
        try:
            while (entry := inbox.get()) is not None:
                # Like a request boundary: drop a broken or too-old connection,
                # but not on every job (with health checks that costs a query).
                if time.monotonic() >= next_connection_check:
                    close_old_connections()
                    next_connection_check = time.monotonic() + self.config.HEARTBEAT_INTERVAL
                started = time.monotonic()
                try:
                    outcome = self._start(entry, started)
                except Exception as exc:
                    outcome = self._failed_to_run(entry, exc)
                finally:
                    with self._lock:
                        if self._running.get(entry.job.pk) is entry:
                            del self._running[entry.job.pk]
                with self._lock:
                    self.counts[outcome] = self.counts.get(outcome, 0) + 1
                    self._record_duration(pool, time.monotonic() - started)
                self._wake.set()
        finally:
            connections.close_all()

    def _start(self, entry: _Running, now: float) -> str:
        if self._stopping:
            # Read ahead but not started: back to the queue, no attempt spent
            # (unless the supervisor, at the shutdown deadline, did it first).
            with self._lock:
                if self._running.get(entry.job.pk) is not entry:
                    return "released"
            return "released" if release(entry.job, self.clock.now()) else "lost"
        entry.deadline = now + max_run_time_for(entry.job)
        entry.started = True
        return run_claimed_job(entry.job, entry.interruptible, self.clock.now, self._record_success)

    def _failed_to_run(self, entry: _Running, exc: Exception) -> str:
        """Only a bug of ours (or the database failing past all retries) gets
        here: count the attempt if we can, so a job cannot loop on it forever."""
        logger.exception("job=%s could not be run", entry.job.pk)
        close_old_connections()
        try:
            return fail_attempt(entry.job, exc, now=self.clock.now())
        except Exception:
            logger.exception("job=%s left to crash recovery", entry.job.pk)
            return "lost"

    def _record_duration(self, pool: Pool, seconds: float) -> None:
        average = self._average_duration[pool]
        self._average_duration[pool] = (
            seconds if average is None else average + DURATION_SMOOTHING * (seconds - average)
        )
