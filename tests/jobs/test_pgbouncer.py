"""Workers through PgBouncer in transaction mode, as with Heroku's pooler.

Transaction pooling breaks LISTEN (and session state in general): claiming and
running must work through the pooled URL, with LISTEN on a direct URL or off.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from django.db import connection

from jobs import enqueue_many
from jobs.models import Job
from tests.jobs.waiting import wait_for
from tests.processes import free_port
from tests.testapp import faulty

pytestmark = pytest.mark.slow

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@pytest.fixture
def pgbouncer():
    if connection.vendor != "postgresql":
        pytest.skip("PgBouncer pools PostgreSQL connections; SQLite has none")
    if not shutil.which(PGBOUNCER):
        reason = "PgBouncer, for the PostgreSQL pooling test, is missing: apt-get install pgbouncer"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)  # PgBouncer missing, outside CI: PostgreSQL pooling untested
    # pgbouncer drops root for the postgres user, who must reach its files.
    with tempfile.TemporaryDirectory(prefix="pgbouncer-") as directory:
        tmp_path = Path(directory)
        shutil.chown(tmp_path, "postgres")
        yield from _run_pgbouncer(tmp_path)


def _run_pgbouncer(tmp_path):
    port = free_port()
    settings = connection.settings_dict
    (tmp_path / "users.txt").write_text(f'"{settings["USER"] or "postgres"}" ""\n')
    config = tmp_path / "pgbouncer.ini"
    config.write_text(
        f"""
[databases]
* = host={settings["HOST"] or "127.0.0.1"} port={settings["PORT"] or 5432}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {tmp_path / "users.txt"}
pool_mode = transaction
default_pool_size = 4
max_client_conn = 100
logfile = {tmp_path / "pgbouncer.log"}
pidfile = {tmp_path / "pgbouncer.pid"}
"""
    )
    process = subprocess.Popen([PGBOUNCER, "-u", "postgres", str(config)])
    try:
        deadline = time.monotonic() + 10
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline, (tmp_path / "pgbouncer.log").read_text()
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("listen", ["direct", "off"])
def test_workers_run_jobs_through_a_transaction_pooler(manage, subprocess_env, pgbouncer, listen):
    direct = subprocess_env["DATABASE_URL"]
    pooled = direct.replace(f":{connection.settings_dict['PORT'] or 5432}/", f":{pgbouncer}/")
    env = {"DATABASE_URL": pooled, "JOBS_LISTEN_URL": direct if listen == "direct" else "0"}
    jobs = enqueue_many(faulty.CountedJob(n) for n in range(300))
    workers = [manage("jobs", "work", "--concurrency", "4", env=env) for _ in range(2)]
    done = Job.objects.filter(pk__in=[job.pk for job in jobs], status="succeeded")
    wait_for(lambda: done.count() == 300, timeout=60, message="jobs through PgBouncer")
    # And an idle worker still picks new work up promptly.
    [late] = enqueue_many([faulty.CountedJob(300)])
    enqueued = time.monotonic()
    wait_for(lambda: Job.objects.filter(pk=late.pk, status="succeeded").exists(), timeout=15)
    pickup = time.monotonic() - enqueued
    for worker in workers:
        worker.send_signal(15)
        assert worker.wait(timeout=30) == 0, worker.output
        assert "Traceback" not in worker.output
    assert f"wake={'listen' if listen == 'direct' else 'poll'}" in workers[0].output
    assert pickup < (1 if listen == "direct" else 3), pickup
