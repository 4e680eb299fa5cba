"""Load: many jobs through real workers while a real web process takes signups.

PostgreSQL: 20,000 jobs through 4 worker processes x 8 threads beside a stream
of signups through gunicorn. SQLite: 100 signups while a worker drains 2,000
jobs, the two writing to one file. Either way nothing is lost, nothing runs
twice, and no locking error reaches a visitor, a job or a log.
"""

import json
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from jobs import enqueue_many
from jobs.models import Job
from signupdemo.models import ScheduledEmail
from tests.testapp.jobs import LoadJob
from tests.testapp.models import Event

from .web import ARTIFACTS, Visitor, running_web

pytestmark = [pytest.mark.faults, pytest.mark.slow]

PASSWORD = "correct horse battery staple"
BAD_LOG_LINES = ("deadlock", "could not serialize", "database is locked", "Traceback")
ON_POSTGRESQL = connection.vendor == "postgresql"


def stop(worker, timeout: float = 30) -> int:
    """SIGTERM, as Heroku sends; returns the exit status."""
    worker.send_signal(signal.SIGTERM)
    return worker.wait(timeout=timeout)


def sign_up_many(base_url: str, count: int, threads: int) -> list[int]:
    """``count`` signups, each from its own client address; returns their statuses."""

    def one(i: int) -> int:
        visitor = Visitor(base_url, forwarded_for=f"10.{i // 250}.{i % 250}.1")
        data = {"email": f"load{i}@example.com", "name": f"Visitor {i}", "password": PASSWORD}
        return visitor.post_form("/signup/", data).status

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, range(count)))


def wait_until_drained(queue: str, expected: int, timeout: float, since: float) -> float:
    """Poll until ``expected`` jobs of ``queue`` have finished; returns seconds since ``since``."""
    started = time.monotonic()
    while True:
        finished = Job.objects.filter(
            queue=queue, status__in=[Job.Status.SUCCEEDED, Job.Status.FAILED]
        ).count()
        if finished >= expected:
            return time.monotonic() - since
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{finished} of {expected} jobs finished in {timeout}s")
        time.sleep(0.2)


def assert_clean(name: str, log: str):
    for bad in BAD_LOG_LINES:
        assert bad not in log, f"{bad!r} in the {name} log:\n{log[-6000:]}"


def assert_every_job_ran_once(queue: str, count: int):
    jobs = Job.objects.filter(queue=queue)
    assert dict(Counter(jobs.values_list("status", flat=True))) == {"succeeded": count}
    assert not jobs.exclude(last_error="").exists()
    runs = Counter(Event.objects.filter(name="load").values_list("data__n", flat=True).iterator())
    duplicates = {n: times for n, times in runs.items() if times > 1}
    lost = set(range(count)) - set(runs)
    assert not duplicates, f"{len(duplicates)} jobs ran more than once: {list(duplicates)[:20]}"
    assert not lost, f"{len(lost)} jobs never ran: {sorted(lost)[:20]}"


def assert_every_signup_queued_its_confirmation(statuses: list[int]):
    assert Counter(statuses) == {302: len(statuses)}, Counter(statuses)
    confirmations = ScheduledEmail.objects.filter(kind="confirmation")
    assert confirmations.count() == len(statuses)
    assert set(confirmations.values_list("state", flat=True)) == {"sent"}
    assert set(confirmations.values_list("job__status", flat=True)) == {"succeeded"}


@pytest.mark.skipif(not ON_POSTGRESQL, reason="needs PostgreSQL (SQLite has its own load test)")
def test_20000_jobs_through_4_workers_by_8_threads_beside_signups(manage, subprocess_env):
    jobs_count, signups_count = 20_000, 150
    enqueue_many((LoadJob(n) for n in range(jobs_count)), queue="load")
    logs = ARTIFACTS / "load_postgresql"

    with running_web(
        subprocess_env,
        logs,
        TRUSTED_PROXY_HOPS="1",  # each visitor's X-Forwarded-For is its own client address
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="4",
    ) as web:
        started = time.monotonic()
        workers = [manage("jobs", "work", "--concurrency", "8") for _ in range(4)]
        statuses = sign_up_many(web.url, signups_count, threads=6)
        drained = wait_until_drained("load", jobs_count, timeout=150, since=started)
        elapsed = wait_until_drained("emails", signups_count, timeout=30, since=started)
        web_status = web.stop()
        web_log = web.output
    statuses_at_exit = [stop(worker) for worker in workers]

    throughput = jobs_count / drained
    figures = {
        "database": "postgresql",
        "jobs": jobs_count,
        "workers": 4,
        "threads_per_worker": 8,
        "signups": signups_count,
        "seconds_to_drain": round(drained, 2),
        "jobs_per_second": round(throughput, 1),
        "seconds_with_signup_emails": round(elapsed, 2),
        "duplicates": 0,
        "lost": 0,
    }
    for number, worker in enumerate(workers):
        (logs / f"worker{number}.log").write_text(worker.output)
        assert_clean(f"worker {number}", worker.output)
    assert_clean("web", web_log)
    assert statuses_at_exit == [0, 0, 0, 0]
    assert web_status == 0
    assert_every_job_ran_once("load", jobs_count)
    assert_every_signup_queued_its_confirmation(statuses)

    print(
        f"\nload (PostgreSQL): {jobs_count} jobs through 4 workers x 8 threads in "
        f"{drained:.1f} s = {throughput:.0f} jobs/s, beside {signups_count} signups"
    )
    ARTIFACTS.parent.mkdir(exist_ok=True)
    (ARTIFACTS.parent / "load.json").write_text(json.dumps(figures, indent=2) + "\n")


@pytest.mark.skipif(ON_POSTGRESQL, reason="SQLite only (PostgreSQL has its own load test)")
def test_sqlite_web_and_worker_write_at_once_without_locking_errors(manage, subprocess_env):
    jobs_count, signups_count = 2_000, 100
    enqueue_many((LoadJob(n) for n in range(jobs_count)), queue="load")
    logs = ARTIFACTS / "load_sqlite"

    with running_web(
        subprocess_env,
        logs,
        TRUSTED_PROXY_HOPS="1",
        WEB_CONCURRENCY="2",
        GUNICORN_THREADS="4",
    ) as web:
        started = time.monotonic()
        worker = manage("jobs", "work")
        statuses = sign_up_many(web.url, signups_count, threads=8)
        drained = wait_until_drained("load", jobs_count, timeout=150, since=started)
        wait_until_drained("emails", signups_count, timeout=60, since=started)
        web_status = web.stop()
        web_log = web.output
    worker_status = stop(worker)
    (logs / "worker.log").write_text(worker.output)

    assert_clean("worker", worker.output)
    assert_clean("web", web_log)
    assert worker_status == 0
    assert web_status == 0
    assert not Job.objects.filter(last_error__icontains="locked").exists()
    assert_every_job_ran_once("load", jobs_count)
    assert_every_signup_queued_its_confirmation(statuses)
    print(f"\nload (SQLite): {jobs_count} jobs in {drained:.1f} s beside {signups_count} signups")
