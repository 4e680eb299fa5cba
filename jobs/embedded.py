"""Jobs inside another process: a web server's workers run the same WorkerLoop
as ``manage.py jobs work``, in background threads beside their requests.

One dyno is then enough (JOBS["IN_WEB"]). A server's hooks call
``start_beside_web()`` in each worker process after it forks, and
``stop_beside_web()`` as it exits (see gunicorn.conf.py); nothing else starts
a loop, so management commands, migrations and tests never run jobs.
"""

import logging
import os
import signal
import threading
from collections.abc import Callable

from .conf import jobs_settings
from .worker import EXIT_STUCK, WRITE_GRACE, Pool, WorkerLoop, WorkerOptions

logger = logging.getLogger("jobs")

_lock = threading.Lock()
_loops: dict[int, WorkerLoop] = {}  # by process id: a forked child starts its own


def start_beside_web(host_alive: Callable[[], bool], graceful_timeout: float) -> WorkerLoop | None:
    """Start this process's worker loop if JOBS["IN_WEB"] is on (once per process).

    ``host_alive()`` turns false when the server begins its graceful
    shutdown; the loop then stops so as to be done within
    ``graceful_timeout``, after which the server kills the process.
    """
    config = jobs_settings()
    if not config.IN_WEB:
        return None
    with _lock:
        loop = _loops.get(os.getpid())
        if loop is not None:
            return loop
        loop = WorkerLoop(
            WorkerOptions(pools=(Pool(size=config.IN_WEB_CONCURRENCY),), kind="in-web")
        )
        loop.start()
        _loops[os.getpid()] = loop
    budget = shutdown_budget(graceful_timeout)
    threading.Thread(
        target=_follow_host, args=(loop, host_alive, budget), name="jobs-web-host", daemon=True
    ).start()
    return loop


def shutdown_budget(graceful_timeout: float) -> float:
    """How long running jobs may take to finish once the server stops: the
    server's grace less the interrupt grace and the time to write outcomes."""
    config = jobs_settings()
    margin = config.INTERRUPT_GRACE + WRITE_GRACE + 1
    return max(0.0, min(config.SHUTDOWN_TIMEOUT, graceful_timeout - margin))


def stop_beside_web(graceful_timeout: float) -> int | None:
    """Stop this process's loop and wait for it; its exit status, if any ran."""
    with _lock:
        loop = _loops.pop(os.getpid(), None)
    if loop is None:
        return None
    budget = shutdown_budget(graceful_timeout)
    loop.stop(timeout=budget)
    status = loop.join(timeout=budget + jobs_settings().INTERRUPT_GRACE + WRITE_GRACE)
    if status == EXIT_STUCK:
        # The process exits next: the job stopped for this shutdown goes back.
        loop.release_stuck_claims()
    return status


def _follow_host(loop: WorkerLoop, host_alive: Callable[[], bool], budget: float) -> None:
    while loop.join(timeout=0.5) is None:
        if not host_alive():
            loop.stop(timeout=budget)
            return
    if loop.status == EXIT_STUCK:
        # A job's thread ignored its interruption: only the end of this
        # process ends it. Ask the server to replace this worker process,
        # gracefully (its requests finish first).
        logger.error("worker=%s stuck; asking the web process to restart", loop.name)
        os.kill(os.getpid(), signal.SIGTERM)
