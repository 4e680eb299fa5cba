"""A worker's heartbeat: its row in jobs_worker, kept fresh from a thread of its own.

The heartbeat has its own thread and connection, so neither job code nor the
worker's claims and housekeeping can delay it. It also measures what the
rest of the worker needs to stay safe:

- ``fresh()``: the last beat is recent (within half the timeout), so no other
  worker can have taken this worker for dead. Jobs start only while it is.
- ``steady()``: beats have been fresh for half the timeout without a gap, so
  every live worker has had time to beat again too (a worker whose beat
  failed tries again every second). Only then may this worker judge others
  dead: right after an outage, everyone's heartbeat is old.
- ``generation``: goes up when the row was gone (we were presumed dead and
  our claims taken back): claims made before that are void.
"""

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

from django.db import DatabaseError, connections
from django.db.models.functions import Now

from .clock import DatabaseClock
from .conf import jobs_settings
from .connections import bounded_statements, harden
from .models import Job, Worker

logger = logging.getLogger("jobs")


class Heartbeat:
    def __init__(
        self,
        name: str,
        *,
        queues,
        concurrency: int,
        lock_key: int | None,
        kind: str = "dedicated",
        clock: DatabaseClock,
        monotonic: Callable[[], float] = time.monotonic,
        on_cancel: Callable[[list], None] | None = None,
    ):
        self.name = name
        self.queues, self.concurrency, self.lock_key = list(queues), concurrency, lock_key
        self.kind = kind
        self.clock = clock
        self.monotonic = monotonic
        self.on_cancel = on_cancel
        config = jobs_settings()
        self.interval, self.timeout = config.HEARTBEAT_INTERVAL, config.HEARTBEAT_TIMEOUT
        self.generation = 0
        self.last_beat: float | None = None  # monotonic time the last good beat was sent
        self.steady_since: float | None = None
        self.registered = threading.Event()
        self._stop = threading.Event()
        self._poked = threading.Event()
        self._unregister = False
        self._thread = threading.Thread(target=self._run, name="jobs-heartbeat", daemon=True)

    # -- what the worker asks -------------------------------------------------------

    def fresh(self) -> bool:
        last = self.last_beat
        return last is not None and self.monotonic() - last < self.timeout / 2

    def steady(self) -> bool:
        since = self.steady_since
        return self.fresh() and since is not None and self.monotonic() - since >= self.timeout / 2

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, unregister: bool, timeout: float) -> None:
        """Stop beating; delete the row too if ``unregister`` (nothing left running)."""
        self._unregister = unregister
        self._stop.set()
        self._poked.set()
        self._thread.join(timeout)

    def poke(self) -> None:
        """Beat now: a running job's cancellation was requested (PostgreSQL's
        NOTIFY says so; without it the next beat finds out)."""
        self._poked.set()

    def _run(self) -> None:
        harden()
        try:
            while not self._stop.is_set():
                try:
                    self.beat()
                except Exception:  # a bug of ours must not end the heartbeat
                    logger.exception("worker=%s heartbeat error", self.name)
                    self.steady_since = None
                self._poked.wait(self.interval if self.fresh() else min(self.interval, 1.0))
                self._poked.clear()
            if self._unregister:
                Worker.objects.filter(name=self.name).delete()
        except DatabaseError:
            logger.warning("worker=%s could not unregister", self.name)
        finally:
            connections.close_all()

    def beat(self) -> bool:
        """One heartbeat (registering if needed); False if the database is away."""
        sent = self.monotonic()
        try:
            with bounded_statements():
                if not self.registered.is_set():
                    self._register()
                elif not Worker.objects.filter(name=self.name).update(last_heartbeat_at=Now()):
                    self.generation += 1
                    logger.warning(
                        "worker=%s was presumed dead; its claims are void; registering again",
                        self.name,
                    )
                    self._register()
            self.clock.sync()
            requests = self._cancellation_requests()
        except DatabaseError as exc:
            logger.warning("worker=%s heartbeat failed: %s", self.name, exc)
            connections["default"].close()
            self.steady_since = None
            return False
        if self.steady_since is None or not self.fresh():
            self.steady_since = sent
        self.last_beat = sent
        self.registered.set()
        if requests and self.on_cancel is not None:
            self.on_cancel(requests)
        return True

    def _cancellation_requests(self) -> list:
        """(id, lease, requested at) of this worker's jobs asked to stop."""
        if self.on_cancel is None:
            return []
        running = Job.objects.filter(
            status=Job.Status.RUNNING, locked_by=self.name, cancel_requested_at__isnull=False
        )
        return list(running.values_list("pk", "lease", "cancel_requested_at"))

    def _register(self) -> None:
        Worker.objects.update_or_create(
            name=self.name,
            defaults={
                "hostname": socket.gethostname(),
                "pid": os.getpid(),
                "queues": self.queues,
                "concurrency": self.concurrency,
                "lock_key": self.lock_key,
                "kind": self.kind,
                "last_heartbeat_at": Now(),
            },
        )


def new_lock_key() -> int:
    """A random positive bigint for the worker's advisory lock."""
    return secrets.randbits(62) + 1
