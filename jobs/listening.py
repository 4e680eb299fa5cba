"""Instant wake-up on PostgreSQL: LISTEN for the NOTIFY that enqueue sends.

The listener owns one connection of its own, outside Django's pool, because
LISTEN needs a session that stays put: through PgBouncer in transaction mode
it would not, so with a pooled DATABASE_URL point JOBS["LISTEN_URL"] at the
direct URL, or set it to False and let workers poll.

That session also holds the worker's advisory lock (``Worker.lock_key``),
which tells other workers this process is alive even when no Python thread
of it can run (see jobs.maintenance).
"""

import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, unquote, urlsplit

from django.db import connections

from .conf import jobs_settings
from .connections import bounded_options
from .notifying import CANCEL_CHANNEL, NOTIFY_CHANNEL

logger = logging.getLogger("jobs")


def listen_supported(listen_url) -> bool:
    return bool(listen_url) and (
        isinstance(listen_url, str) or connections["default"].vendor == "postgresql"
    )


def url_settings(url: str) -> dict:
    """Connection settings from a postgres:// URL; query parameters
    (``?sslmode=require``) become OPTIONS. No dependency on dj-database-url."""
    parts = urlsplit(url)
    return {
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": unquote(parts.hostname or ""),
        "PORT": str(parts.port or ""),
        "OPTIONS": dict(parse_qsl(parts.query)),
    }


class NotificationListener:
    """A daemon thread that calls ``on_notify(queue)`` for each enqueue, and
    ``on_cancel()`` when cancellation of a running job was requested."""

    def __init__(
        self,
        listen_url: bool | str,
        on_notify: Callable[[str], None],
        lock_key: int | None = None,
        on_cancel: Callable[[], None] | None = None,
    ):
        self.listen_url = listen_url
        self.on_notify = on_notify
        self.on_cancel = on_cancel
        self.lock_key = lock_key
        self.connected = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jobs-listener", daemon=True)

    def start(self) -> "NotificationListener":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()

    def _connect(self):
        default = connections["default"]
        settings_dict = dict(default.settings_dict)
        if isinstance(self.listen_url, str):
            settings_dict.update(url_settings(self.listen_url))
        # A connection left hanging by a failover must fail, not leave the
        # worker deaf for 15 minutes.
        settings_dict["OPTIONS"] = {**bounded_options(), **settings_dict.get("OPTIONS", {})}
        params = type(default)(settings_dict, alias="jobs-listener").get_connection_params()
        connection = default.get_new_connection(params)
        connection.autocommit = True
        connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
        connection.execute(f"LISTEN {CANCEL_CHANNEL}")
        if self.lock_key is not None:
            connection.execute("SELECT pg_try_advisory_lock(%s)", [self.lock_key])
        return connection

    def _run(self) -> None:
        probe_every = max(1.0, jobs_settings().DATABASE_TIMEOUT / 2)
        while not self._stopping.is_set():
            try:
                connection = self._connect()
            except Exception as exc:
                logger.warning("listener could not connect (%s); polling meanwhile", exc)
                self._stopping.wait(2.0)
                continue
            self.connected.set()
            # Anything enqueued while we were away was missed: look now.
            self.on_notify("")
            try:
                with connection:
                    next_probe = time.monotonic() + probe_every
                    while not self._stopping.is_set():
                        for notify in connection.notifies(timeout=1.0):
                            if notify.channel == CANCEL_CHANNEL:
                                if self.on_cancel is not None:
                                    self.on_cancel()
                            else:
                                self.on_notify(notify.payload)
                        if time.monotonic() >= next_probe:
                            # A silent channel and a dead connection look alike:
                            # ask, and let TCP_USER_TIMEOUT fail it if nobody answers.
                            connection.execute("SELECT 1")
                            next_probe = time.monotonic() + probe_every
            except Exception as exc:
                logger.warning("listener lost its connection (%s); reconnecting", exc)
            finally:
                self.connected.clear()
