"""The worker's dispatcher: the one thread that claims jobs and hands them to pools.

It also promotes scheduled jobs as they come due, gives back claims that
waited too long unstarted, and does the housekeeping (crash recovery,
pruning). All of it is database work, kept off the control thread so that
deadlines hold whatever the database does, and off the heartbeat's thread so
that a slow query never makes a live worker look dead.
"""

import logging
import math
import threading
from datetime import timedelta

from django.db import DatabaseError, connections
from django.db.models import Min

from . import maintenance, slots
from .claiming import PROMOTE_BATCH, claim_due_jobs, new_lease, promote_due_jobs
from .claims import Claim, State
from .connections import bounded_statements, harden
from .models import Job
from .running import failure_hooks, release

logger = logging.getLogger("jobs")

#: A pool whose jobs take less than this on average claims jobs ahead of its
#: threads, so a thread never waits for the next claim. Longer jobs are not
#: read ahead: a job queued behind a slow one would wait while others idle.
READ_AHEAD_BELOW = 0.1
#: Seconds between looks for read-ahead claims that waited too long.
RETURN_SCAN_INTERVAL = 0.25
#: Seconds between promotions of scheduled jobs that came due while the
#: worker was busy (an idle worker wakes for the next one on time).
PROMOTE_INTERVAL = 1.0


class Dispatcher:
    def __init__(self, worker):
        self.worker = worker
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name="jobs-dispatcher", daemon=True)
        self._next_maintenance = 0.0
        self._next_promotion = 0.0
        self._next_due: float | None = None  # monotonic time the next scheduled job is due
        self._unanswered: set[str] = set()  # leases of claims whose reply may be lost
        self._reconnect_delay = 0.5
        self.claim_sizes: list[int] = []  # the LIMIT of each claim statement
        self._next_return_scan = 0.0

    def start(self) -> "Dispatcher":
        self.thread.start()
        return self

    @property
    def read_ahead_window(self) -> float:
        """How long a read-ahead claim may wait for a thread before it goes back."""
        return max(1.0, 20 * self.worker.config.READ_AHEAD_SECONDS)

    # -- the loop ---------------------------------------------------------------------

    def _run(self) -> None:
        harden()
        listener = self.worker.listener
        if listener:
            # Claim once the listener holds the advisory lock that shows this
            # process alive (see jobs.maintenance), or after a bounded wait.
            listener.connected.wait(self.worker.config.DATABASE_TIMEOUT)
        try:
            while not self.worker.dispatching_done.is_set():
                self.wake.clear()
                try:
                    self._round()
                    self._reconnect_delay = 0.5
                except DatabaseError as exc:
                    self._database_error(exc)
                    continue
                self.wake.wait(self._next_wait())
            self._give_back_everything()
        except DatabaseError as exc:
            logger.warning("worker=%s could not give back its claims: %s", self.worker.name, exc)
        finally:
            connections.close_all()

    def _round(self) -> None:
        worker = self.worker
        now = worker.monotonic()
        if self._unanswered:
            self._release_lost_replies()
        self._return_waiting_claims(now)
        if worker.stopping or not worker.heartbeat.fresh():
            return
        if now >= self._next_maintenance:
            self._housekeeping()
            self._next_maintenance = now + worker.config.HEARTBEAT_INTERVAL
        if now >= min(self._next_promotion, self._next_due or math.inf):
            self._promote(now)
        claimed, looked = self._claim(now)
        if looked and not claimed:
            self._next_due = self._next_scheduled()
            done = worker.options.exit_on_complete and not len(worker.holdings)
            # Nothing came due meanwhile either, nor was a blocked job's slot free.
            if done and not self._promote(now) and not slots.unblock(Job):
                logger.info("worker=%s no more due jobs; exiting", worker.name)
                worker.stop()
        elif claimed:
            self.wake.set()  # look again at once: more may fit (read-ahead)

    def _next_wait(self) -> float:
        worker = self.worker
        now = worker.monotonic()
        waits = [worker.sleep_delay, self._next_maintenance - now]
        if self._next_due is not None:
            waits.append(self._next_due - now)
        if not worker.heartbeat.fresh():
            waits.append(0.25)
        queued = [c.claimed_at for c in worker.holdings.snapshot() if c.state is State.QUEUED]
        if queued:
            waits.append(min(queued) + self.read_ahead_window - now)
        return max(0.001, min(waits))

    def _database_error(self, exc: Exception) -> None:
        delay = self._reconnect_delay
        logger.warning(
            "worker=%s database error: %s; retrying in %.1fs", self.worker.name, exc, delay
        )
        connections["default"].close()
        self.worker.dispatching_done.wait(delay)
        self._reconnect_delay = min(delay * 2, self.worker.config.RECONNECT_DELAY)

    # -- claiming -----------------------------------------------------------------------

    def _claim(self, now: float) -> tuple[int, bool]:
        """Fill free threads; returns (jobs claimed, whether any pool had room)."""
        worker = self.worker
        claimed, looked = 0, False
        held = worker.holdings.snapshot()
        for pool in worker.options.pools:
            mine = [claim for claim in held if claim.pool is pool]
            capacity = self._capacity(pool, mine, now)
            free = capacity - len(mine)
            if free <= 0 or free < capacity - worker.live_threads(pool) * 2:
                # Read-ahead refills in batches, once its threads are down to
                # about two jobs each: one claim for many jobs, none idle.
                continue
            looked = True
            lease = new_lease()
            self._unanswered.add(lease)  # until the reply is in hand
            self.claim_sizes.append(free)
            # No statement timeout here (the hot path: it would cost three
            # round trips): the claim skips locked rows, so it never waits
            # on a lock, and TCP_USER_TIMEOUT bounds a hanging connection.
            jobs = claim_due_jobs(
                worker_name=worker.name,
                lease=lease,
                limit=free,
                queues=pool.queues,
                min_priority=worker.options.min_priority,
                max_priority=worker.options.max_priority,
            )
            self._unanswered.discard(lease)
            generation = worker.heartbeat.generation
            for job in jobs:
                claim = Claim(job, pool, claimed_at=now, generation=generation)
                worker.holdings.add(claim)
                worker.inboxes[pool].put(claim)
            claimed += len(jobs)
        return claimed, looked

    def _capacity(self, pool, mine: list[Claim], now: float) -> int:
        """Jobs this pool may hold: one per live thread, more for short jobs.

        A thread that has been in one job longer than the read-ahead window
        gets no read-ahead: what waited behind it has gone back already.
        """
        worker = self.worker
        threads = worker.live_threads(pool)
        average = worker.average_duration[pool]
        if average is None or average >= READ_AHEAD_BELOW:
            return threads
        busy_long = sum(
            1
            for claim in mine
            if claim.started_at is not None and now - claim.started_at > self.read_ahead_window
        )
        config = worker.config
        per_thread = min(
            config.MAX_READ_AHEAD, max(2, int(config.READ_AHEAD_SECONDS / max(average, 1e-6)))
        )
        return busy_long + max(0, threads - busy_long) * per_thread

    def _return_waiting_claims(self, now: float) -> None:
        """Give back claims no thread started within the read-ahead window
        (their threads are busy with longer jobs than the average promised),
        and every unstarted claim once the worker stops."""
        worker = self.worker
        if now < self._next_return_scan and not worker.stopping:
            return  # a few scans a second are enough for a one-second window
        self._next_return_scan = now + RETURN_SCAN_INTERVAL
        for claim in worker.holdings.snapshot():
            waited_too_long = now - claim.claimed_at > self.read_ahead_window
            if (
                claim.state is State.QUEUED
                and (worker.stopping or waited_too_long)
                and worker.holdings.take(claim, State.RETURNING)
            ):
                released = release(claim.job, worker.clock.now(), worker.past_exit_deadline)
                worker.finished(claim, "released" if released else "lost", None)

    def _release_lost_replies(self) -> None:
        with bounded_statements():
            maintenance.release_lost_replies(self._unanswered, self.worker.clock.now())
        self._unanswered.clear()

    def _give_back_everything(self) -> None:
        """At the end: unstarted claims, and claims whose reply was lost."""
        self._return_waiting_claims(math.inf)
        if self._unanswered:
            self._release_lost_replies()

    # -- scheduled jobs --------------------------------------------------------------------

    def _promote(self, now: float) -> int:
        """Make scheduled jobs that came due ready; returns how many."""
        with bounded_statements():
            promoted = len(promote_due_jobs())
        # A full batch means more are due: promote again on the next round.
        self._next_promotion = now if promoted >= PROMOTE_BATCH else now + PROMOTE_INTERVAL
        self._next_due = None
        return promoted

    def _next_scheduled(self) -> float | None:
        """When the next waiting job comes due, so we wake for it, not at the next poll.

        Only jobs still in the future count: one already due that we did not
        claim (its queue paused, its priority out of our range) must not make
        us wake again at once, in a loop. Ready jobs count too: one enqueued
        by a web process whose clock runs ahead of the database's is ready
        but not yet due. One query per status, so each reads the first entry
        of its own partial index on run_at.
        """
        worker = self.worker
        now = worker.clock.now()
        soonest = [
            Job.objects.filter(status=status, run_at__gt=now)
            .for_queues(worker.options.queues)
            .in_priority_range(worker.options.min_priority, worker.options.max_priority)
            .aggregate(next=Min("run_at"))["next"]
            for status in (Job.Status.READY, Job.Status.SCHEDULED)
        ]
        next_run_at = min(filter(None, soonest), default=None)
        if next_run_at is None:
            return None
        return worker.monotonic() + (next_run_at - now) / timedelta(seconds=1)

    # -- housekeeping ----------------------------------------------------------------------

    def _housekeeping(self) -> None:
        worker = self.worker
        if worker.heartbeat.steady():
            # Only a worker that has itself beaten steadily for a while (see
            # Heartbeat.steady) may judge others dead: after an outage all look silent.
            for recovered in maintenance.recover_abandoned_jobs(give_up=lambda: True):
                worker.hooks.submit(
                    failure_hooks,
                    recovered.performable,
                    recovered.job,
                    recovered.error,
                    recovered.outcome,
                )
        with bounded_statements():
            maintenance.prune_succeeded(worker.clock.now())
            # Slots are filled as they free; this catches one whose filling
            # failed (the database was away at that moment).
            slots.unblock(Job)
