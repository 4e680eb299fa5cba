"""Instant wake-up on PostgreSQL: LISTEN for the NOTIFY that enqueue sends.

The listener owns one connection of its own, outside Django's pool, because
LISTEN needs a session that stays put: through PgBouncer in transaction mode
it would not, so with a pooled DATABASE_URL point JOBS["LISTEN_URL"] at the
direct URL, or set it to False and let workers poll.
"""

import logging
import threading
from collections.abc import Callable

import dj_database_url
from django.db import connections

from .claiming import NOTIFY_CHANNEL

logger = logging.getLogger("jobs")

RECONNECT_DELAY = 2.0


def listen_supported(listen_url) -> bool:
    return bool(listen_url) and (
        isinstance(listen_url, str) or connections["default"].vendor == "postgresql"
    )


class NotificationListener:
    """A daemon thread that calls ``on_notify(queue)`` for each enqueue."""

    def __init__(self, listen_url: bool | str, on_notify: Callable[[str], None]):
        self.listen_url = listen_url
        self.on_notify = on_notify
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
        if isinstance(self.listen_url, str):
            settings_dict = {**default.settings_dict, **dj_database_url.parse(self.listen_url)}
            params = type(default)(settings_dict, alias="jobs-listener").get_connection_params()
        else:
            params = default.get_connection_params()
        connection = default.get_new_connection(params)
        connection.autocommit = True
        connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return connection

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                connection = self._connect()
            except Exception as exc:
                logger.warning("listener could not connect (%s); polling meanwhile", exc)
                self._stopping.wait(RECONNECT_DELAY)
                continue
            self.connected.set()
            # Anything enqueued while we were away was missed: look now.
            self.on_notify("")
            try:
                with connection:
                    while not self._stopping.is_set():
                        for notify in connection.notifies(timeout=1.0):
                            self.on_notify(notify.payload)
            except Exception as exc:
                logger.warning("listener lost its connection (%s); reconnecting", exc)
            finally:
                self.connected.clear()
