"""The database goes away for 10 s under working workers, and comes back.

Twice: through a proxy the test cuts (every connection dropped, new ones
refused, as in a failover, while the server stays up for the test itself),
and by really stopping and starting the local PostgreSQL cluster. (The web
side of an outage is in test_web_outage.py.)
"""

import os
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import OperationalError, connection, connections

from jobs import enqueue_many
from jobs.models import Job
from tests.faults.fleet import Fleet, save_figures, wait_until_settled
from tests.faults.tcpproxy import TcpProxy
from tests.jobs.waiting import wait_for
from tests.testapp import faulty
from tests.testapp.models import Event

pytestmark = [pytest.mark.faults, pytest.mark.slow]

OUTAGE_SECONDS = 10


@pytest.fixture
def proxy():
    if connection.vendor != "postgresql":
        pytest.skip("a database server outage applies to PostgreSQL, not to an SQLite file")
    with TcpProxy(("127.0.0.1", int(connection.settings_dict["PORT"] or 5432))) as proxy:
        yield proxy


def test_workers_ride_out_a_database_outage(manage, subprocess_env, proxy):
    url = subprocess_env["DATABASE_URL"].replace(
        f":{connection.settings_dict['PORT'] or 5432}/", f":{proxy.port}/"
    )
    jobs = enqueue_many(faulty.CountedJob(n, seconds=0.005) for n in range(2000))
    fleet = Fleet(manage, "jobs", "work", "--concurrency", "4", env={"DATABASE_URL": url})
    fleet.start(2).wait_until_up()
    wait_for(lambda: Event.objects.filter(name="executed").count() >= 300, timeout=60)

    dropped = proxy.cut()
    time.sleep(OUTAGE_SECONDS)  # the outage itself: real time must pass
    proxy.restore()
    restored = time.monotonic()
    done_at_restore = Job.objects.filter(status="succeeded").count()
    wait_for(
        lambda: Job.objects.filter(status="succeeded").count() > done_at_restore,
        timeout=60,
        message="work to resume",
    )
    first_after = time.monotonic() - restored
    wait_until_settled(timeout=180)
    assert fleet.stop() == [0, 0]

    ours = Job.objects.filter(pk__in=[j.pk for j in jobs])
    statuses = Counter(ours.values_list("status", flat=True))
    assert statuses == {"succeeded": 2000}  # none lost, none left running
    executions = Counter(Event.objects.filter(name="executed").values_list("data__n", flat=True))
    attempts = dict(Job.objects.values_list("payload__job__state__n", "attempts"))
    # A job runs again only after an attempt was counted: never more runs than attempts.
    wrong = {n: (executions[n], a) for n, a in attempts.items() if not 1 <= executions[n] <= a}
    assert not wrong, (wrong, fleet.output[-20000:])
    assert "database error" in fleet.output or "database unavailable" in fleet.output
    save_figures(
        "database_outage",
        {
            "outage_seconds": OUTAGE_SECONDS,
            "connections_dropped": dropped,
            "jobs": 2000,
            "lost": 0,
            "left_running": 0,
            "jobs_retried_after_outage": sum(a > 1 for a in attempts.values()),
            "seconds_to_resume_after_restore": round(first_after, 1),
        },
    )


def _cluster():
    """The local PostgreSQL cluster's version, when this run may stop and start it."""
    clusters = sorted(Path("/etc/postgresql").glob("*/main"))
    if connection.vendor != "postgresql" or not clusters or os.geteuid() != 0:
        pytest.skip("restarting PostgreSQL needs the local cluster and root (CI has both)")
    return clusters[-1].parent.name


def _pg_ctl(version, action):
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    subprocess.run([*command, "-m", "fast"] if action == "stop" else command, check=True)


def _accepting():
    connections.close_all()
    try:
        Job.objects.exists()
    except OperationalError:
        return False
    return True


def test_workers_ride_out_a_real_postgresql_restart(manage):
    version = _cluster()
    jobs = enqueue_many(faulty.CountedJob(n, seconds=0.005) for n in range(1000))
    fleet = Fleet(manage, "jobs", "work", "--concurrency", "4").start(2)
    fleet.wait_until_up()
    wait_for(lambda: Event.objects.filter(name="executed").count() >= 100, timeout=60)
    connections.close_all()
    try:
        _pg_ctl(version, "stop")
        time.sleep(OUTAGE_SECONDS)  # the outage itself: real time must pass
    finally:
        _pg_ctl(version, "start")
    wait_for(_accepting, timeout=60, message="PostgreSQL to accept connections")
    wait_until_settled(timeout=180)
    assert fleet.stop() == [0, 0]
    ours = Job.objects.filter(pk__in=[j.pk for j in jobs])
    assert Counter(ours.values_list("status", flat=True)) == {"succeeded": 1000}
    assert "database error" in fleet.output or "database unavailable" in fleet.output
