"""Test settings: the site's settings plus a test app of job targets."""

import os

from signupdemo.settings import *  # noqa: F403
from signupdemo.settings import BASE_DIR, DATABASES, INSTALLED_APPS, JOBS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]

# Worker subprocesses must see the test database, so SQLite tests use a file
# (one per pytest process), not the in-memory default.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {
        "NAME": str(BASE_DIR / f".test-db-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.sqlite3")
    }

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MAILERS = {"default": {"BACKEND": "signupdemo.outbox.OutboxEmailBackend"}}

# Short heartbeats so crash recovery is observable in seconds, not a minute.
JOBS = {
    **JOBS,
    "HEARTBEAT_INTERVAL": float(os.environ.get("JOBS_TEST_HEARTBEAT_INTERVAL", 0.5)),
    "HEARTBEAT_TIMEOUT": float(os.environ.get("JOBS_TEST_HEARTBEAT_TIMEOUT", 3)),
    "SLEEP_DELAY": 0.1,
}
