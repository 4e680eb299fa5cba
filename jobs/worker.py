"""The worker: a loop object that runs jobs until stopped, embeddable in any process.

Each part has its own thread, so that none can hold up another:

- the **control** thread (``_control``) touches no database: it enforces job
  deadlines and the shutdown timeout by the monotonic clock, interrupts jobs,
  notices threads stuck in code that ignores interruption, and decides when
  the worker ends;
- the **heartbeat** (jobs.heartbeat) keeps the worker's row fresh on its own
  connection, and tells whether this worker's leases are provably alive;
- the **dispatcher** (jobs.dispatch) claims jobs, promotes scheduled ones and
  does the housekeeping;
- **executors** (jobs.executor), one per pool thread, run job code; a
  **hook thread** runs the hooks of jobs recovered from dead workers;
- on PostgreSQL a **listener** (jobs.listening) wakes the dispatcher on NOTIFY.

``start()`` makes the worker's identity and threads; ``stop()`` asks it to
finish; ``join()`` waits. Only ``manage.py jobs work`` installs signal
handlers, which only set a flag.
"""

import logging
import os
import queue as queue_module
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import DatabaseError, connection

from .claims import Claim, Holdings, State
from .clock import DatabaseClock
from .conf import jobs_settings
from .dispatch import Dispatcher
from .executor import Executor, HookThread
from .finishing import SuccessRecorder
from .heartbeat import Heartbeat, new_lock_key
from .listening import NotificationListener, listen_supported
from .running import JobCancelled, JobTimeout, WorkerShutdown, release
from .waker import Waker

logger = logging.getLogger("jobs")

#: Weight of the latest duration in the moving average of job durations.
DURATION_SMOOTHING = 0.2
#: Seconds past the shutdown timeout and the interrupt grace that a stopping
#: worker keeps trying to write outcomes while the database is away (the
#: defaults add up to 27 s, inside Heroku's 30).
WRITE_GRACE = 2.0

#: How long a job put back by an exiting worker whose thread is stuck in it
#: waits before it is due, so that it cannot start before the process is gone.
RESTART_MARGIN = 2.0

#: Exit statuses.
EXIT_OK, EXIT_STUCK = 0, 1


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
    kind: str = "dedicated"  # Worker.Kind: a process of its own, or inside a web process

    @property
    def queues(self) -> tuple[str, ...]:
        """Every queue served, or () when some pool serves them all."""
        if any(not pool.queues for pool in self.pools):
            return ()
        return tuple(sorted({q for pool in self.pools for q in pool.queues}))

    @property
    def concurrency(self) -> int:
        return sum(pool.size for pool in self.pools)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class WorkerLoop:
    """``monotonic``: the clock for deadlines and intervals (injectable for tests)."""

    def __init__(
        self,
        options: WorkerOptions = WorkerOptions(),
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.options = options
        self.config = jobs_settings()
        self.monotonic = monotonic
        self.clock = DatabaseClock()
        self.name = None  # made at start(): a process forked after import gets its own
        self.counts = {"succeeded": 0, "failed": 0, "retry": 0, "released": 0, "lost": 0}
        self.holdings = Holdings()
        self.inboxes = {pool: queue_module.SimpleQueue() for pool in options.pools}
        self.average_duration = dict.fromkeys(options.pools)  # seconds, moving average
        self.dispatching_done = threading.Event()
        self.stopping = False
        self.stuck = False
        self.status: int | None = None
        self._signals = 0  # stop signals received; the control thread acts on them
        self._hurry = False
        self._stop_requested_at: float | None = None
        self._shutdown_timeout = self.config.SHUTDOWN_TIMEOUT
        self._counts_lock = threading.Lock()
        self._waker = Waker()
        self._executors: list[Executor] = []
        self._control_thread: threading.Thread | None = None
        self._done = threading.Event()
        self.hooks = HookThread()
        self.dispatcher = Dispatcher(self)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> "WorkerLoop":
        if self._control_thread is not None:
            raise RuntimeError("A WorkerLoop starts once; make a new one.")
        self.name = worker_name()
        self.record_success = SuccessRecorder(self.past_exit_deadline)
        listen = self.config.LISTEN_URL if self.options.listen is None else self.options.listen
        listening = listen_supported(listen)
        lock_key = new_lock_key() if listening else None
        self.listener = (
            NotificationListener(listen, self._notified, lock_key, self._cancel_notified)
            if listening
            else None
        )
        default_sleep = self.config.SLEEP_DELAY if listening else self.config.POLL_INTERVAL
        self.sleep_delay = (
            self.options.sleep_delay if self.options.sleep_delay is not None else default_sleep
        )
        self.heartbeat = Heartbeat(
            self.name,
            queues=self.options.queues,
            concurrency=self.options.concurrency,
            lock_key=lock_key,
            kind=self.options.kind,
            clock=self.clock,
            monotonic=self.monotonic,
            on_cancel=self.cancellation_requested,
        )
        self.heartbeat.start()
        self.hooks.start()
        for pool in self.options.pools:
            for number in range(pool.size):
                self._executors.append(Executor(self, pool, number).start())
        if self.listener:
            self.listener.start()
        self.dispatcher.start()
        self._control_thread = threading.Thread(
            target=self._control, name="jobs-control", daemon=True
        )
        self._control_thread.start()
        logger.info(
            "worker=%s started pools=%s wake=%s",
            self.name,
            " ".join(map(str, self.options.pools)),
            "listen" if self.listener else f"poll:{self.sleep_delay:g}s",
        )
        return self

    def stop(self, timeout: float | None = None, *, hurry: bool = False) -> None:
        """Stop claiming; running jobs get ``timeout`` seconds (default
        JOBS["SHUTDOWN_TIMEOUT"]; none if ``hurry``) to finish, then are
        interrupted and go back to the queue with their attempt uncounted."""
        if timeout is not None:
            self._shutdown_timeout = min(self._shutdown_timeout, timeout)
        self._hurry = self._hurry or hurry
        if not self.stopping:
            self._stop_requested_at = self.monotonic()
            self.stopping = True
        self.dispatcher.wake.set()
        self._waker.wake()

    def join(self, timeout: float | None = None) -> int | None:
        """Wait for the worker to end; its exit status, or None if still running.

        EXIT_STUCK: a job ignored its interruption and its thread still runs
        it. Its claim is kept (and heartbeats go on) so that no other worker
        runs it beside itself: the process should exit, and crash recovery
        then takes the job back.
        """
        self._done.wait(timeout)
        return self.status

    def run(self) -> int:
        """start() and join(), for a process of its own (``jobs work``)."""
        self.start()
        while (status := self.join(0.5)) is None:
            pass
        return status

    def release_stuck_claims(self) -> int:
        """For a process about to exit (``os._exit``) with a thread stuck in a
        job: put back, uncounted, the jobs that ignored a *shutdown*
        interruption, due only RESTART_MARGIN seconds later, so that no
        other worker starts them before this process is gone. A deploy must
        not spend an attempt of a job that blocks in C code (a socket read,
        ``time.sleep``). Jobs that ignored their *timeout* are left to crash
        recovery, which counts the attempt and runs their hooks.
        """
        stuck = [
            claim
            for claim in self.holdings.snapshot()
            if claim.stuck and claim.interrupted_with is WorkerShutdown
        ]
        if stuck and connection.vendor == "sqlite":
            # The stuck job may hold SQLite's write lock: do not wait for it
            # long; its process exits next, and crash recovery takes over.
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA busy_timeout = 500")
        released = 0
        for claim in stuck:
            try:
                released += release(
                    claim.job,
                    self.clock.now(),
                    give_up=lambda: True,
                    delay=RESTART_MARGIN,
                )
            except DatabaseError as exc:
                logger.warning("job=%s left to crash recovery: %s", claim.job.pk, exc)
        return released

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: stop gracefully; a second one: interrupt jobs now.

        The handler only counts and writes a byte to a pipe: it runs between
        two bytecodes of the main thread, which may hold any lock just then.
        """

        def handle(signum, frame):
            self._signals += 1
            self._waker.wake()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    # -- what the other threads ask -------------------------------------------------------

    def may_start(self, claim: Claim) -> bool:
        """A job starts only while no other worker can have taken its claim."""
        heartbeat = self.heartbeat
        return not self.stopping and heartbeat.fresh() and claim.generation == heartbeat.generation

    def past_exit_deadline(self) -> bool:
        """Whether a stopping worker should give up writing to the database."""
        if not self.stopping:
            return False
        config = self.config
        deadline = (
            self._stop_requested_at + self._shutdown_timeout + config.INTERRUPT_GRACE + WRITE_GRACE
        )
        return self.monotonic() >= deadline

    def live_threads(self, pool: Pool) -> int:
        stuck = sum(1 for c in self.holdings.snapshot() if c.pool is pool and c.stuck)
        return pool.size - stuck

    def finished(self, claim: Claim, outcome: str, duration: float | None) -> None:
        """An executor or the dispatcher is done with ``claim``."""
        self.holdings.drop(claim)
        with self._counts_lock:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1
            if duration is not None:
                average = self.average_duration[claim.pool]
                self.average_duration[claim.pool] = (
                    duration
                    if average is None
                    else average + DURATION_SMOOTHING * (duration - average)
                )
        if self.stopping:
            self.dispatcher.wake.set()
            self._waker.wake()  # the control thread ends the worker once nothing is held
        elif self.holdings.count(claim.pool) <= 2 * claim.pool.size:
            # Only then may the dispatcher claim (read-ahead refills once its
            # threads are down to two jobs each): no round for every job.
            self.dispatcher.wake.set()

    def cancellation_requested(self, requests) -> None:
        """Jobs of ours were asked to stop: (id, lease, requested at) each. A
        job sees it through jobs.cancel_requested(), and is interrupted if it
        is still running CANCEL_GRACE seconds later; one not started yet
        never starts."""
        asked = {(pk, lease): at for pk, lease, at in requests}
        deadline = self.monotonic() + self.config.CANCEL_GRACE
        for claim in self.holdings.snapshot():
            at = asked.get((claim.job.pk, claim.job.lease))
            if at is not None and not claim.interruptible.cancellation.is_set():
                claim.job.cancel_requested_at = at
                claim.cancel_deadline = deadline
                claim.interruptible.cancellation.set()
                logger.info("job=%s cancellation requested", claim.job.pk)
        self._waker.wake()

    def _cancel_notified(self) -> None:
        if self.holdings.snapshot():
            self.heartbeat.poke()

    def _notified(self, queue: str) -> None:
        served = self.options.queues
        if not queue or not served or queue in served:
            self.dispatcher.wake.set()

    # -- the control thread -----------------------------------------------------------------

    def _control(self) -> None:
        try:
            while True:
                if self._signals and not self.stopping:
                    logger.info("worker=%s received a stop signal; stopping", self.name)
                    self.stop()
                if self._signals > 1 and not self._hurry:
                    logger.info("worker=%s second stop signal; interrupting jobs", self.name)
                    self.stop(hurry=True)
                now = self.monotonic()
                self._watch_claims(now)
                self._replace_dead_executors()
                if self.stopping and self._may_end(now):
                    break
                self._waker.wait(self._next_wait(now))
        finally:
            self._end()

    def _may_end(self, now: float) -> bool:
        left = [claim for claim in self.holdings.snapshot() if not claim.stuck]
        if not left:
            return True
        if self.past_exit_deadline():
            logger.error(
                "worker=%s exiting with %s outcomes unwritten (database away?): "
                "crash recovery will take them back",
                self.name,
                len(left),
            )
            return True
        return False

    def _shutdown_due(self, now: float) -> bool:
        return self.stopping and (
            self._hurry or now >= self._stop_requested_at + self._shutdown_timeout
        )

    def _watch_claims(self, now: float) -> None:
        shutdown_due = self._shutdown_due(now)
        grace = self.config.INTERRUPT_GRACE
        for claim in self.holdings.snapshot():
            if claim.state is not State.RUNNING or claim.stuck:
                continue
            if claim.interrupted_at is None:
                if shutdown_due:
                    self._interrupt(claim, WorkerShutdown, now)
                elif now >= claim.deadline:
                    self._interrupt(claim, JobTimeout, now)
                elif now >= claim.cancel_deadline:
                    self._interrupt(claim, JobCancelled, now)
            elif now - claim.interrupted_at >= grace and claim.interruptible.active:
                self._stuck(claim)

    def _interrupt(self, claim: Claim, exception_class, now: float) -> None:
        if claim.interruptible.interrupt(exception_class):
            claim.interrupted_at = now
            claim.interrupted_with = exception_class
            logger.warning("job=%s interrupting with %s", claim.job.pk, exception_class.__name__)

    def _stuck(self, claim: Claim) -> None:
        """The job's thread ignored its interruption (stuck in C code, say).

        Nobody records an outcome for it: its retry would run beside it. The
        worker stops (other jobs get the shutdown timeout) and keeps the
        claim; once the process exits, crash recovery takes the job back.
        """
        claim.stuck = True
        self.stuck = True
        logger.error(
            "job=%s thread did not stop within %gs of %s; the worker exits so that the "
            "job can run again once its thread is gone",
            claim.job.pk,
            self.config.INTERRUPT_GRACE,
            claim.interrupted_with.__name__,
        )
        self.stop()

    def _replace_dead_executors(self) -> None:
        """An executor never dies of a job, but if one died of a bug of ours,
        its pool must not be left short (nor claim for a dead thread)."""
        for index, executor in enumerate(self._executors):
            if not executor.thread.is_alive() and not self._done.is_set() and not self.stopping:
                logger.error("worker=%s thread %s died; replacing it", self.name, executor.thread)
                self._executors[index] = Executor(self, executor.pool, index).start()

    def _next_wait(self, now: float) -> float:
        waits = [1.0]  # also how often dead threads are looked for
        grace = self.config.INTERRUPT_GRACE
        for claim in self.holdings.snapshot():
            if claim.state is State.RUNNING and not claim.stuck:
                if claim.interrupted_at is None:
                    waits.append(min(claim.deadline, claim.cancel_deadline) - now)
                else:
                    waits.append(claim.interrupted_at + grace - now)
        if self.stopping and not self._hurry:
            waits.append(self._stop_requested_at + self._shutdown_timeout - now)
        return max(0.001, min(waits))

    def _end(self) -> None:
        """Give back what can be, and leave the worker's row only if nothing is held.

        Every wait here is bounded, together, by WRITE_GRACE once the exit
        deadline has passed (the database may be away), else by
        DATABASE_TIMEOUT.
        """
        self.stopping = True
        budget = WRITE_GRACE if self.past_exit_deadline() else self.config.DATABASE_TIMEOUT
        end_by = time.monotonic() + budget

        def left() -> float:
            return max(0.0, end_by - time.monotonic())

        self.dispatching_done.set()
        self.dispatcher.wake.set()
        self.dispatcher.thread.join(left())
        for executor in self._executors:
            self.inboxes[executor.pool].put(None)
        busy = {claim.thread for claim in self.holdings.snapshot()}
        for executor in self._executors:
            if executor.thread not in busy:
                executor.thread.join(left())
        if self.listener:
            self.listener.stop()
        self.hooks.stop(timeout=left())
        held = len(self.holdings)
        if not held:
            self.heartbeat.stop(unregister=True, timeout=left())
        # else heartbeats go on until the process exits, so that a stuck job
        # is not run again beside its thread.
        counts = " ".join(f"{k}={v}" for k, v in self.counts.items())
        logger.info("worker=%s stopped %s held=%s", self.name, counts, held)
        self.status = EXIT_STUCK if self.stuck else EXIT_OK
        self._done.set()
