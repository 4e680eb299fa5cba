"""The smallest Django project django-tasks-db runs in (its own database, .venv-peers)."""

import os
from urllib.parse import urlsplit

_url = urlsplit(os.environ["BENCH_DATABASE_URL"])

SECRET_KEY = "bench-only"
USE_TZ = True
INSTALLED_APPS = ["django_tasks_db"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.path.lstrip("/"),
        "USER": _url.username or "",
        "PASSWORD": _url.password or "",
        "HOST": _url.hostname or "",
        "PORT": _url.port or "",
        # Its default; BENCH_TASKSDB_CONN_MAX_AGE=60 measures persistent connections.
        "CONN_MAX_AGE": int(os.environ.get("BENCH_TASKSDB_CONN_MAX_AGE", "0")),
    }
}
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
