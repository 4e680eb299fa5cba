"""Ordinary production events that once made a worker run a job twice, or strand it.

Each test reproduces one fault of the worker issue with real `jobs work`
processes (and, for outages, the TCP proxy in front of PostgreSQL), against
the design that fixes it: a lease per claim, heartbeats on a thread of their
own, liveness the database can see, deadlines on a thread that never touches
the database. Heartbeats here are 0.5 s, the timeout 3 s (tests/settings.py).
"""

import signal
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction

from jobs import delay, enqueue, enqueue_many
from jobs.claiming import claim_due_jobs
from jobs.clock import database_now
from jobs.models import Job, Worker
from tests.faults.tcpproxy import TcpProxy
from tests.jobs.waiting import wait_for
from tests.testapp import faulty
from tests.testapp import jobs as targets
from tests.testapp.models import Event

pytestmark = [pytest.mark.faults, pytest.mark.slow]

QUICK_STOP = {"JOBS_TEST_SHUTDOWN_TIMEOUT": "1", "JOBS_TEST_INTERRUPT_GRACE": "1"}


@pytest.fixture
def proxied(subprocess_env):
    """(proxy, DATABASE_URL through it); PostgreSQL only."""
    if connection.vendor != "postgresql":
        pytest.skip("a database server outage applies to PostgreSQL, not to an SQLite file")
    port = int(connection.settings_dict["PORT"] or 5432)
    with TcpProxy(("127.0.0.1", port)) as proxy:
        url = subprocess_env["DATABASE_URL"].replace(f":{port}/", f":{proxy.port}/")
        yield proxy, url


def _started(key):
    return Event.objects.filter(name="started", data__key=key)


def _stop(*workers):
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    return [worker.wait(timeout=30) for worker in workers]


# -- outages and hanging connections ---------------------------------------------------


def test_an_outage_longer_than_the_heartbeat_timeout_runs_no_job_twice(manage, proxied):
    """Once back, the first worker to reach the database took the others'
    heartbeats (all old after the outage) for dead and ran their jobs again
    while their first runs went on."""
    proxy, url = proxied
    jobs = [enqueue(faulty.SleepsWithoutTheDatabase(key="outage", seconds=8)) for _ in range(2)]
    workers = [
        manage("jobs", "work", "--concurrency", "1", env={"DATABASE_URL": url}) for _ in range(2)
    ]
    wait_for(lambda: _started("outage").count() == 2, message="both jobs start")
    proxy.cut()
    time.sleep(4.5)  # the outage itself, past the 3 s timeout: real time must pass
    proxy.restore()
    ids = [job.pk for job in jobs]
    wait_for(lambda: Job.objects.filter(pk__in=ids, status="succeeded").count() == 2, timeout=30)
    time.sleep(1)  # a second run, were there one, would have started by now
    logs = "\n".join(worker.output for worker in workers)
    assert _started("outage").count() == 2, logs
    assert set(Job.objects.filter(pk__in=ids).values_list("attempts", flat=True)) == {1}
    assert _stop(*workers) == [0, 0]
    assert not any("recovered from" in worker.output for worker in workers)


def test_sigterm_during_an_outage_interrupts_the_job_and_exits_in_time(manage, proxied):
    """Neither the shutdown timeout nor the interruption waited for the
    database before; the worker did not exit until Heroku's SIGKILL."""
    proxy, url = proxied
    delay(targets.busy_forever)()
    worker = manage("jobs", "work", env={"DATABASE_URL": url, **QUICK_STOP})
    wait_for(lambda: Event.objects.filter(name="busy_started").exists(), message="job start")
    proxy.cut()
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, worker.output
    # 1 s to finish, 1 s interrupt grace, 2 s of write grace, and the ends of threads.
    assert time.monotonic() - started < 10, worker.output
    assert "interrupting with WorkerShutdown" in worker.output


def test_a_hanging_connection_neither_frees_the_job_nor_ignores_sigterm(manage, proxied):
    """Packets go unanswered (a failover, a dead route): the worker neither
    heartbeats nor hears from the database. It must still stop on SIGTERM,
    and no other worker may start its job while its process lives."""
    proxy, url = proxied
    delay(targets.busy_forever)()
    hanging = manage(
        "jobs", "work", env={"DATABASE_URL": url, "JOBS_TEST_DATABASE_TIMEOUT": "2", **QUICK_STOP}
    )
    wait_for(lambda: Event.objects.filter(name="busy_started").exists(), message="job start")
    other = manage("jobs", "work")
    wait_for(lambda: Worker.objects.filter(pid=other.pid).exists(), message="other worker")
    proxy.freeze()
    time.sleep(5)  # past the heartbeat timeout: real time must pass
    assert Event.objects.filter(name="busy_started").count() == 1
    started = time.monotonic()
    hanging.send_signal(signal.SIGTERM)
    assert hanging.wait(timeout=30) == 0, hanging.output
    assert time.monotonic() - started < 12, hanging.output
    # Its process is gone: once its connections close, the job is recovered.
    proxy.cut()
    wait_for(lambda: Event.objects.filter(name="busy_started").count() == 2, timeout=20)
    assert _stop(other) == [0]


def test_after_a_short_blip_jobs_do_not_fail_on_dead_connections(manage, proxied):
    """The next job on each thread ran on the thread's dead connection and
    failed; with one attempt allowed, for good."""
    proxy, url = proxied
    # Django's own check of a worker's connections runs every heartbeat
    # interval (and after errors): make it long, as in production (10 s), so
    # that it cannot be what catches the dead connections here.
    slow_checks = {"JOBS_TEST_HEARTBEAT_INTERVAL": "5", "JOBS_TEST_HEARTBEAT_TIMEOUT": "30"}
    worker = manage("jobs", "work", "--concurrency", "2", env={"DATABASE_URL": url, **slow_checks})
    enqueue_many(faulty.RecordOnce(n) for n in range(8))
    wait_for(lambda: Job.objects.filter(status="succeeded").count() == 8, message="warm-up")
    proxy.cut()
    time.sleep(1)  # the blip: real time must pass
    proxy.restore()
    jobs = enqueue_many(faulty.RecordOnce(n) for n in range(8, 16))
    ids = [job.pk for job in jobs]
    wait_for(
        lambda: not Job.objects.filter(pk__in=ids, status__in=["ready", "running"]).exists(),
        timeout=30,
    )
    assert Counter(Job.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        "succeeded": 8
    }
    assert _stop(worker) == [0]


# -- slow writes, slow hooks, the GIL -------------------------------------------------


def test_a_success_held_up_by_a_row_lock_is_not_written_off_as_a_timeout(manage):
    """The job finished in time, but its success waited on a row lock past
    max_run_time + grace: the supervisor wrote it off, and it ran again."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite locks the whole file")
    job = enqueue(faulty.QuickJob(seconds=0.5))  # max_run_time 1 s
    worker = manage("jobs", "work", env={"JOBS_TEST_INTERRUPT_GRACE": "1"})
    wait_for(lambda: _started("quick").exists(), message="job start")
    with transaction.atomic():
        Job.objects.select_for_update().get(pk=job.pk)
        time.sleep(4)  # past max_run_time and the grace: real time must pass
    wait_for(lambda: Job.objects.filter(pk=job.pk, status="succeeded").exists(), timeout=20)
    time.sleep(1)
    job.refresh_from_db()
    assert (job.attempts, job.result, job.error_count) == (1, "done", 0)
    assert _started("quick").count() == 1
    assert _stop(worker) == [0]


def test_a_slow_hook_of_a_recovered_job_does_not_stop_heartbeats(manage):
    """Crash recovery ran the job's hooks on the supervisor, which also sent
    the heartbeats: a slow hook made the live worker look dead."""
    dead = Worker.objects.create(
        name="gone:1:abc",
        hostname="elsewhere",
        pid=1,
        last_heartbeat_at=database_now() - timedelta(hours=1),
    )
    enqueue(faulty.SlowErrorHook(seconds=5))
    claim_due_jobs(worker_name=dead.name, limit=1)
    worker = manage("jobs", "work")
    wait_for(lambda: Event.objects.filter(name="slow_hook_started").exists(), timeout=20)
    ages = []
    while not Event.objects.filter(name="slow_hook_finished").exists():
        beat = Worker.objects.get(pid=worker.pid).last_heartbeat_at
        ages.append((database_now() - beat).total_seconds())
        time.sleep(0.2)
        connections.close_all()
    assert len(ages) > 10 and max(ages) < 1.5, ages  # beats every 0.5 s throughout
    assert _stop(worker) == [0]


def test_a_job_holding_the_gil_is_not_taken_for_a_dead_worker(manage):
    """No thread of its process, heartbeat included, runs while one C call
    holds the GIL; but the process is alive (its pid on SQLite, its advisory
    lock on PostgreSQL), so no other worker starts the job again."""
    job = enqueue(faulty.GilHog(seconds=6))
    hog = manage("jobs", "work")
    wait_for(lambda: _started("gil").exists(), message="job start")
    other = manage("jobs", "work")
    wait_for(lambda: Job.objects.filter(pk=job.pk, status="succeeded").exists(), timeout=60)
    job.refresh_from_db()
    assert job.attempts == 1 and job.result >= 3  # it did hold the GIL past the timeout
    assert _started("gil").count() == 1
    assert _stop(hog, other) == [0, 0]
    assert "recovered from" not in other.output


# -- stuck threads and read-ahead ----------------------------------------------------------


def test_a_job_stuck_in_a_transaction_does_not_lock_the_database_for_ever(manage):
    """On SQLite the stuck thread holds the write lock: the worker exits, so
    the lock goes with its process, and the site can write again."""
    job = enqueue(faulty.StuckInTransaction())  # max_run_time 1 s
    worker = manage("jobs", "work", "--concurrency", "2", env={"JOBS_TEST_INTERRUPT_GRACE": "1"})
    wait_for(lambda: Job.objects.filter(pk=job.pk, status="running").exists())
    assert worker.wait(timeout=30) == 1, worker.output
    Event.objects.create(name="the site writes again")  # 'database is locked' before
    assert Job.objects.get(pk=job.pk).status == "running"  # for crash recovery to take


def test_short_jobs_read_ahead_behind_a_long_one_go_to_other_workers(manage):
    """A thread's read-ahead sat claimed and unstarted for the whole run of
    the long job in front of it, while another worker idled."""
    enqueue_many((faulty.CountedJob(n) for n in range(40)), priority=10)
    long_job = delay(targets.sleep, priority=5)(6)
    behind = enqueue_many((faulty.CountedJob(n) for n in range(40, 80)), priority=0)
    first = manage("jobs", "work", "--concurrency", "1")
    wait_for(lambda: Event.objects.filter(name="sleep_started").exists(), message="long job")
    second = manage("jobs", "work", "--concurrency", "1")
    wait_for(lambda: Job.objects.filter(pk=long_job.pk, status="succeeded").exists(), timeout=30)
    finished = Job.objects.filter(pk__in=[j.pk for j in behind], status="succeeded")
    assert finished.count() == 40
    long_job.refresh_from_db()
    last = max(finished.values_list("finished_at", flat=True))
    assert last < long_job.finished_at, (last, long_job.finished_at)
    assert _stop(first, second) == [0, 0]


def test_a_storm_of_stop_signals_neither_deadlocks_nor_runs_a_job_twice(manage):
    """The handler set an Event whose lock the main thread held inside
    wait(); a second signal also released read-ahead that a thread was
    starting. Handlers now only count and write to a pipe."""
    enqueue_many(faulty.CountedJob(n) for n in range(3000))
    worker = manage("jobs", "work", "--concurrency", "4")
    wait_for(lambda: Event.objects.filter(name="executed").count() >= 100, timeout=30)

    def storm():
        for _ in range(100):
            worker.send_signal(signal.SIGTERM)
            time.sleep(0.001)

    threading.Thread(target=storm).start()
    # 0, or -15 when the storm outlives the worker: after its last line the
    # interpreter restores the default handler while it exits.
    assert worker.wait(timeout=20) in (0, -signal.SIGTERM), worker.output
    assert "stopped succeeded=" in worker.output and "Traceback" not in worker.output
    executions = Counter(Event.objects.filter(name="executed").values_list("data__n", flat=True))
    assert max(executions.values()) == 1
    assert not Job.objects.filter(status="running").exists()
