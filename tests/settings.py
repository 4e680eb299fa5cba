"""Test settings: the site's settings plus a test app of job targets."""

import os
import tempfile
from pathlib import Path

from signupdemo.settings import *  # noqa: F403
from signupdemo.settings import DATABASES, INSTALLED_APPS, JOBS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]

# Worker subprocesses must see the test database, so SQLite tests use a file
# (one per test run, so that two runs never share it), not the in-memory default.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"signupdemo-test-{os.getpid()}.sqlite3")
    }
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_signupdemo_{os.getpid()}"}

# Tests run without collectstatic; WhiteNoise need not look for its output.
WHITENOISE_AUTOREFRESH = True

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
    "SHUTDOWN_TIMEOUT": float(os.environ.get("JOBS_TEST_SHUTDOWN_TIMEOUT", 2)),
    "INTERRUPT_GRACE": float(os.environ.get("JOBS_TEST_INTERRUPT_GRACE", 5)),
    "DATABASE_TIMEOUT": float(os.environ.get("JOBS_TEST_DATABASE_TIMEOUT", 10)),
    "SLEEP_DELAY": 0.1,
}

TASKS = {
    "default": {
        "BACKEND": "jobs.backends.JobsBackend",
        "QUEUES": ["default", "emails", "other"],
    }
}

# The fault suite fakes a worker's clock (it must not matter: the database's
# clock decides): JOBS_TEST_CLOCK_SKEW=-600 starts this process 10 min behind.
if os.environ.get("JOBS_TEST_CLOCK_SKEW"):
    import datetime

    import time_machine

    time_machine.travel(
        datetime.datetime.now(datetime.UTC)
        + datetime.timedelta(seconds=float(os.environ["JOBS_TEST_CLOCK_SKEW"])),
        tick=True,
    ).start()
