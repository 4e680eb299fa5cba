"""What a worker holds: its claims, each with a state that one thread at a time moves.

A claimed job is queued for a pool's threads, then started by one of them,
or given back unstarted (read-ahead that waited too long, a stopping worker).
Starting and giving back race: a thread may pick a claim up just as the
dispatcher returns it. ``take()`` settles the race under one lock, so exactly
one of them acts and a job never both runs and goes back to the queue.
"""

import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

from .models import Job
from .running import Interruptible


class State(Enum):
    QUEUED = "queued"  # claimed, waiting for a thread of its pool
    RUNNING = "running"  # a thread runs it (job code, then its outcome write)
    RETURNING = "returning"  # being given back unstarted


@dataclass(eq=False)
class Claim:
    job: Job
    pool: object
    claimed_at: float  # monotonic
    generation: int  # the heartbeat's generation at claim time
    state: State = State.QUEUED
    started_at: float | None = None
    deadline: float = math.inf
    thread: threading.Thread | None = None
    interruptible: Interruptible = field(default_factory=Interruptible)
    interrupted_at: float | None = None
    interrupted_with: type | None = None
    cancel_deadline: float = math.inf  # when to interrupt a job asked to stop
    stuck: bool = False


class Holdings:
    """The claims a worker holds, by job id; thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._claims: dict[int, Claim] = {}
        self._per_pool: Counter = Counter()

    def add(self, claim: Claim) -> None:
        with self._lock:
            self._claims[claim.job.pk] = claim
            self._per_pool[claim.pool] += 1

    def take(self, claim: Claim, state: State, **changes) -> bool:
        """Move a queued claim to ``state`` (with ``changes``); False if another
        thread already took it, or it is no longer held."""
        with self._lock:
            if claim.state is not State.QUEUED or self._claims.get(claim.job.pk) is not claim:
                return False
            claim.state = state
            for name, value in changes.items():
                setattr(claim, name, value)
            return True

    def holds(self, claim: Claim) -> bool:
        with self._lock:
            return self._claims.get(claim.job.pk) is claim

    def drop(self, claim: Claim) -> None:
        with self._lock:
            if self._claims.get(claim.job.pk) is claim:
                del self._claims[claim.job.pk]
                self._per_pool[claim.pool] -= 1

    def count(self, pool) -> int:
        """Claims held for ``pool``'s threads."""
        with self._lock:
            return self._per_pool[pool]

    def snapshot(self) -> list[Claim]:
        with self._lock:
            return list(self._claims.values())

    def leases(self) -> set[str]:
        with self._lock:
            return {claim.job.lease for claim in self._claims.values()}

    def __len__(self) -> int:
        with self._lock:
            return len(self._claims)
