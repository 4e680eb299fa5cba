"""What the local PostgreSQL server logs, for tests that must find no error there."""

import os
from pathlib import Path

from django.db import connection

SERVER_LOG = Path("/var/log/postgresql/postgresql-15-main.log")


class ServerLog:
    """Marks the log's end now; ``since()`` is what was logged after it
    ("" on SQLite, or where the log cannot be read)."""

    def __init__(self):
        self.readable = connection.vendor == "postgresql" and os.access(SERVER_LOG, os.R_OK)
        self.offset = SERVER_LOG.stat().st_size if self.readable else 0

    def since(self) -> str:
        if not self.readable:
            return ""
        with SERVER_LOG.open(errors="replace") as log:
            log.seek(self.offset)
            return log.read()


def lock_trouble(text: str) -> list[str]:
    """Lines reporting a deadlock or a serialization failure."""
    return [
        line
        for line in text.splitlines()
        if "deadlock" in line.lower() or "could not serialize" in line.lower()
    ]
