"""jobs as a reusable app: a wheel of jobs alone, installed in a clean virtual
environment beside a project fresh from ``django-admin startproject``."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

PROJECT_CODE = """\
from django.tasks import task


def add(a, b):
    return a + b


@task
def multiply(a, b):
    return a * b
"""

SETTINGS = """
INSTALLED_APPS = [*INSTALLED_APPS, "jobs"]
TASKS = {"default": {"BACKEND": "jobs.backends.JobsBackend"}}
# The project's own modules are no installed app: let workers call them.
JOBS = {"ALLOWED_MODULES": ["mysite"]}
"""

SQLITE = """
DATABASES["default"]["OPTIONS"] = {
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL;",
}
"""

ENQUEUE = """
from jobs import delay
from jobs.models import Job
from mysite.work import add, multiply

print("job", delay(add)(2, 3).pk)
print("task", multiply.enqueue(4, 5).id)
"""

READ_BACK = """
from jobs.models import Job
from mysite.work import multiply

print("results", Job.objects.get(pk={job}).result, multiply.get_result("{task}").return_value)
"""


def clean_env() -> dict:
    """No trace of this repository's settings, path or database."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "DJANGO_", "VIRTUAL_ENV"))
        and key not in {"PYTHONPATH", "DATABASE_URL"}
    }


def run(args, cwd, timeout=300):
    done = subprocess.run(
        args, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh virtual environment with the jobs wheel (and its postgres extra)."""
    base = tmp_path_factory.mktemp("reusable")
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", base / "dist", ROOT / "jobs"],
        ROOT,
    )
    [wheel] = (base / "dist").glob("*.whl")
    run([sys.executable, "-m", "venv", base / "venv"], base)
    python = base / "venv" / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", f"{wheel}[postgres]"], base)
    return base / "venv" / "bin"


def postgres_server() -> str | None:
    """The PostgreSQL server to use: JOBS_TEST_POSTGRES_URL, or the test run's."""
    url = os.environ.get("JOBS_TEST_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """Settings for the new project's database; on PostgreSQL a database of its own."""
    if request.param == "sqlite":
        yield SQLITE
        return
    url = postgres_server()
    if url is None:
        pytest.skip("needs a PostgreSQL server: DATABASE_URL or JOBS_TEST_POSTGRES_URL")
    parts = urlsplit(url)
    name = f"jobs_wheel_{os.getpid()}"
    server = dict(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "",
        password=parts.password or "",
    )
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield textwrap.dedent(f"""
        DATABASES = {{"default": {{
            "ENGINE": "django.db.backends.postgresql", "NAME": {name!r},
            "HOST": {server["host"]!r}, "PORT": {server["port"]!r},
            "USER": {server["user"]!r}, "PASSWORD": {server["password"]!r},
        }}}}
    """)
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_new_project_runs_jobs_and_tasks_from_the_wheel(venv, database, tmp_path):
    run([venv / "django-admin", "startproject", "mysite", tmp_path], tmp_path)
    settings = tmp_path / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + SETTINGS + database)
    (tmp_path / "mysite" / "work.py").write_text(PROJECT_CODE)
    python = venv / "python"

    # The wheel's jobs, not this repository's.
    where = run([python, "-c", "import jobs; print(jobs.__file__)"], tmp_path)
    assert where.startswith(str(venv.parent)), where
    run([python, "manage.py", "check"], tmp_path)
    run([python, "manage.py", "migrate", "--no-input"], tmp_path)
    enqueued = run([python, "manage.py", "shell", "-c", ENQUEUE], tmp_path).splitlines()
    ids = dict(line.split() for line in enqueued if line.startswith(("job ", "task ")))
    worked = run([python, "manage.py", "jobs", "workoff"], tmp_path)
    assert "2 jobs ran: 2 succeeded, 0 failed" in worked
    read_back = READ_BACK.format(**ids)
    assert "results 5 20" in run([python, "manage.py", "shell", "-c", read_back], tmp_path)
