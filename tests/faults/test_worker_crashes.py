"""Workers that die: SIGKILL under load, jobs that kill their worker, stalls.

Real worker processes share the test database; heartbeats are 0.5 s and the
heartbeat timeout 3 s (tests/settings.py), so recovery takes seconds.
"""

import random
import signal
import time
from collections import Counter
from datetime import datetime

import pytest
from django.conf import settings

from jobs import enqueue, enqueue_many
from jobs.models import Job, Worker
from tests.faults.fleet import Fleet, save_figures, wait_until_settled
from tests.jobs.waiting import wait_for
from tests.testapp import faulty
from tests.testapp.models import Event

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def test_sigkill_every_second_under_load_loses_and_duplicates_nothing(manage):
    enqueue_many(faulty.CountedJob(n, seconds=0.002) for n in range(5000))
    fleet = Fleet(manage, "jobs", "work", "--concurrency", "4").start(4)
    killed_at = {}  # pid -> wall-clock time of its SIGKILL
    rng = random.Random(42)

    def kill_and_restart():
        if len(killed_at) < 12 and time.time() - max(killed_at.values(), default=0) >= 1:
            victim = fleet.kill_one(rng.randrange(len(fleet.workers)))
            killed_at[victim.pid] = time.time()
            fleet.start()

    started = time.monotonic()
    wait_until_settled(timeout=240, tick=kill_and_restart)
    elapsed = time.monotonic() - started
    assert fleet.stop() == [0] * 4

    jobs = list(Job.objects.values("pk", "status", "attempts", "errors", "payload"))
    assert Counter(job["status"] for job in jobs) == {"succeeded": 5000}  # none stuck, none lost
    executions = Counter(Event.objects.filter(name="executed").values_list("data__n", flat=True))
    by_number = {job["payload"]["job"]["state"]["n"]: job for job in jobs}
    assert set(executions) == set(by_number)
    for n, job in by_number.items():
        # A job can run again only after a crash took its attempt.
        assert 1 <= executions[n] <= job["attempts"], (n, executions[n], job)
    assert sum(job["attempts"] > 1 for job in jobs) >= 1  # the kills did hit jobs

    recoveries = []
    for job in jobs:
        for error in job["errors"]:
            assert error["exception_class"] == "jobs.maintenance.WorkerLost"
            pid = int(error["worker"].split(":")[1])
            recoveries.append(datetime.fromisoformat(error["at"]).timestamp() - killed_at[pid])
    window = settings.JOBS["HEARTBEAT_TIMEOUT"] + settings.JOBS["HEARTBEAT_INTERVAL"]
    assert max(recoveries) <= window + 1.5, max(recoveries)
    save_figures(
        "sigkill_under_load",
        {
            "database": _vendor(),
            "jobs": 5000,
            "kills": len(killed_at),
            "jobs_recovered": sum(job["attempts"] > 1 for job in jobs),
            "lost": 0,
            "ran_twice_without_crash": 0,
            "recovery_seconds_max": round(max(recoveries), 2),
            "recovery_seconds_median": round(sorted(recoveries)[len(recoveries) // 2], 2),
            "heartbeat_timeout_seconds": settings.JOBS["HEARTBEAT_TIMEOUT"],
            "seconds": round(elapsed, 1),
        },
    )


def test_a_job_that_kills_its_worker_ends_failed_and_the_queue_flows(manage):
    killer = enqueue(faulty.WorkerKiller())  # max_attempts = 3
    others = enqueue_many(faulty.CountedJob(n) for n in range(200))
    fleet = Fleet(manage, "jobs", "work", "--concurrency", "2").start(2)
    wait_until_settled(timeout=120, tick=fleet.replace_dead)
    fleet.stop()

    killer.refresh_from_db()
    assert (killer.status, killer.attempts) == ("failed", 3)
    assert [e["exception_class"] for e in killer.errors] == ["jobs.maintenance.WorkerLost"] * 3
    assert Event.objects.filter(name="killer").count() == 3
    done = Job.objects.filter(pk__in=[job.pk for job in others], status="succeeded")
    assert done.count() == 200


def test_a_job_that_runs_out_of_memory_fails_and_the_worker_lives(manage):
    hog = enqueue(faulty.MemoryHog())
    after = enqueue(faulty.CountedJob(1), priority=-1)
    worker = manage("jobs", "workoff")
    assert worker.wait(timeout=60) == 1, worker.output  # one failure
    hog.refresh_from_db()
    after.refresh_from_db()
    assert hog.status == "failed" and hog.last_error.startswith("MemoryError")
    assert after.status == "succeeded"


def test_a_stalled_worker_cannot_overwrite_the_outcome_of_its_successor(manage):
    job = enqueue(faulty.SlowFirstAttempt(seconds=2))
    stalled = manage("jobs", "work")
    wait_for(lambda: Event.objects.filter(name="slow_first").exists(), message="first attempt")
    stalled.send_signal(signal.SIGSTOP)  # longer than the heartbeat timeout
    # A stopped process is alive (its pid, its advisory lock): its jobs stay
    # its own. Its row deleted by hand, the claim counts as abandoned.
    Worker.objects.filter(pid=stalled.pid).delete()
    successor = manage("jobs", "work")
    wait_for(lambda: Job.objects.filter(pk=job.pk, status="succeeded").exists(), timeout=30)
    job.refresh_from_db()
    taken_over = (job.result, job.locked_by, job.attempts)
    assert job.result.startswith("attempt 2") and job.attempts == 2

    stalled.send_signal(signal.SIGCONT)  # wakes, finishes its sleep, tries to record
    wait_for(lambda: Event.objects.filter(name="slow_first").count() == 2)
    time.sleep(2.5)  # its first attempt's sleep ends; it tries to record now
    for worker in (stalled, successor):
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, worker.output
    job.refresh_from_db()
    assert (job.result, job.locked_by, job.attempts) == taken_over
    assert "outcome=lost" in stalled.output
    assert "was presumed dead; its claims are void" in stalled.output


def _vendor():
    from django.db import connection

    return connection.vendor
