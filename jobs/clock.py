"""The database's clock, as seen from a worker whose own clock may be wrong.

Every worker and web process shares one database, so its clock is the one
truth: run_at decisions made in SQL use it directly, and the times a worker
writes (retry schedules, finish times) are its own clock corrected by the
offset measured at each heartbeat.
"""

import time
from datetime import UTC, datetime, timedelta

from django.db import connections
from django.utils import timezone
from django.utils.dateparse import parse_datetime

_NOW_SQL = {
    "postgresql": "SELECT CURRENT_TIMESTAMP",
    "sqlite": "SELECT STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'NOW')",
}


def now_sql(vendor: str) -> str:
    """An SQL expression for the database's current time, as stored in columns."""
    return _NOW_SQL[vendor].removeprefix("SELECT ")


def due_sql(vendor: str) -> str:
    """An SQL expression that run_at must not exceed for a job to be due now.

    SQLite's clock reads whole milliseconds while run_at keeps microseconds,
    so it rounds up: a job enqueued this millisecond is due this millisecond.
    """
    if vendor == "sqlite":
        return "STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'NOW', '+0.001 seconds')"
    return now_sql(vendor)


def database_now(using="default") -> datetime:
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(_NOW_SQL[connection.vendor], [])  # [] so "%%" is unescaped
        value = cursor.fetchone()[0]
    if isinstance(value, str):  # SQLite: naive UTC text
        value = parse_datetime(value).replace(tzinfo=UTC)
    return value


class DatabaseClock:
    """``now()`` is this process's clock plus its measured offset from the database's."""

    def __init__(self, using="default"):
        self.using = using
        self.offset = timedelta(0)

    def sync(self) -> timedelta:
        before = time.monotonic()
        local = timezone.now()
        remote = database_now(self.using)
        round_trip = time.monotonic() - before
        self.offset = remote - (local + timedelta(seconds=round_trip / 2))
        return self.offset

    def now(self) -> datetime:
        return timezone.now() + self.offset
