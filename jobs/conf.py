"""The JOBS setting, read once into a frozen object with documented defaults."""

from dataclasses import dataclass, fields
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

#: Longest queue name the table stores (the queue columns' max_length), which
#: enqueueing and the django.tasks backend validate against.
QUEUE_NAME_MAX_LENGTH = 100


@dataclass(frozen=True)
class JobsSettings:
    #: Attempts before a job is marked failed (delayed_job's max_attempts).
    MAX_ATTEMPTS: int = 25
    #: Longest a job may run before it is interrupted, in seconds (4 hours).
    MAX_RUN_TIME: float = 4 * 60 * 60
    #: Seconds an idle worker waits before looking again, when LISTEN wakes it
    #: (PostgreSQL): only a fallback, so delayed_job's 5 s is fine.
    SLEEP_DELAY: float = 5.0
    #: The same, for a worker that can only poll (SQLite, LISTEN_URL=False).
    POLL_INTERVAL: float = 0.5
    #: Listen for enqueues (PostgreSQL): True uses the default database, a URL
    #: a direct connection (when DATABASE_URL goes through PgBouncer), False polls.
    LISTEN_URL: bool | str = True
    #: Jobs a worker process runs at once (threads), when --concurrency is not given.
    CONCURRENCY: int = 4
    DEFAULT_PRIORITY: int = 0
    DEFAULT_QUEUE: str = "default"
    #: How long succeeded jobs are kept before the worker prunes them.
    KEEP_SUCCEEDED: timedelta = timedelta(days=1)
    #: False runs every job inline at enqueue (tests, debugging).
    DELAY_JOBS: bool = True
    #: Seconds between a worker's heartbeats.
    HEARTBEAT_INTERVAL: float = 10.0
    #: A worker silent this long is presumed dead and its jobs go back.
    HEARTBEAT_TIMEOUT: float = 60.0
    #: Seconds a stopping worker lets a running job finish (Heroku kills at 30).
    SHUTDOWN_TIMEOUT: float = 20.0
    #: Largest payload (arguments as JSON) a job may carry; pass ids for big data.
    MAX_PAYLOAD_BYTES: int = 1024 * 1024
    #: Extra module prefixes the worker may call into, beyond installed apps.
    ALLOWED_MODULES: tuple[str, ...] = ()
    #: Seconds a job's thread gets to stop once interrupted (timeout, shutdown)
    #: before the worker gives up on that thread and exits to be restarted.
    INTERRUPT_GRACE: float = 5.0
    #: Seconds a running job whose cancellation was requested gets to stop on
    #: its own (jobs.cancel_requested()) before it is interrupted.
    CANCEL_GRACE: float = 10.0
    #: Bound on every wait for the database by the worker's own connections:
    #: connecting, an unanswered packet, one of its own statements (seconds).
    DATABASE_TIMEOUT: float = 10.0
    #: Longest pause between a worker's retries while the database is away.
    RECONNECT_DELAY: float = 10.0
    #: Seconds a caller outside a worker (work_off, tests) keeps retrying an
    #: outcome write while the database is away. Workers retry until they exit.
    RECORD_PATIENCE: float = 120.0
    #: Short jobs are claimed ahead of their threads: about this many seconds
    #: of work per thread (by the average duration), at most MAX_READ_AHEAD jobs.
    #: A claim not started within the window goes back for other workers.
    READ_AHEAD_SECONDS: float = 0.05
    MAX_READ_AHEAD: int = 25
    #: Run jobs inside each web server process too (gunicorn.conf.py's hooks
    #: start a worker loop there): one dyno is enough, no worker process needed.
    IN_WEB: bool = False
    #: Job threads in each web process when IN_WEB is on: few, so that
    #: requests keep their share of the CPU and the database's connections.
    IN_WEB_CONCURRENCY: int = 2


DEFAULTS = JobsSettings()
SETTING_NAMES = frozenset(f.name for f in fields(JobsSettings))


def _coerce(name, value):
    """Accept the natural spellings (seconds as numbers, lists for tuples)."""
    if name == "KEEP_SUCCEEDED" and isinstance(value, int | float):
        return timedelta(seconds=value)
    if name == "MAX_RUN_TIME" and isinstance(value, timedelta):
        return value.total_seconds()
    if name == "ALLOWED_MODULES" and isinstance(value, list):
        return tuple(value)
    return value


@cache
def jobs_settings() -> JobsSettings:
    """The effective settings. Validation lives in jobs.checks."""
    configured = getattr(settings, "JOBS", {}) or {}
    known = {k: _coerce(k, v) for k, v in configured.items() if k in SETTING_NAMES}
    return JobsSettings(**known)


@receiver(setting_changed)
def _reset(*, setting, **kwargs):
    if setting == "JOBS":
        jobs_settings.cache_clear()
