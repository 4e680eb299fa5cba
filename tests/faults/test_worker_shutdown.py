"""Deploys (SIGTERM, then SIGKILL 30 s later on Heroku) and jobs that never end."""

import signal
import time

import pytest

from jobs import enqueue, enqueue_many
from jobs.models import Job
from tests.faults.fleet import Fleet, save_figures
from tests.jobs.waiting import wait_for
from tests.testapp import faulty
from tests.testapp.models import Event

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SHUTDOWN_TIMEOUT = 1.0  # seconds a stopping worker lets jobs finish, in these tests


def test_twenty_deploys_in_a_row_spend_no_attempts(manage):
    long_job = enqueue(faulty.BusyJob("deploy"), queue="long")
    Job.objects.filter(pk=long_job.pk).update(max_run_time=3600)
    exit_times = []
    for deploy in range(20):
        short = enqueue_many(faulty.CountedJob(n, seconds=0.3) for n in range(3))
        worker = manage(
            "jobs",
            "work",
            "--concurrency",
            "4",
            env={"JOBS_TEST_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT)},
        )
        wait_for(
            lambda n=deploy: Event.objects.filter(name="started").count() > n,
            message=f"deploy {deploy}: the long job starting",
        )
        sent = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, worker.output
        exit_times.append(time.monotonic() - sent)
        long_job.refresh_from_db()
        assert (long_job.status, long_job.attempts, long_job.errors) == ("ready", 0, [])
        # Short jobs that had started finished; none was left running.
        statuses = set(
            Job.objects.filter(pk__in=[j.pk for j in short]).values_list("status", flat=True)
        )
        assert "running" not in statuses
    assert max(exit_times) < 30  # inside Heroku's grace period, with room to spare
    assert Job.objects.filter(status="running").count() == 0
    assert Job.objects.filter(status="succeeded").count() >= 3  # short jobs got done
    save_figures(
        "sigterm_deploys",
        {
            "deploys": 20,
            "long_job_attempts_after": long_job.attempts,
            "shutdown_timeout_seconds": SHUTDOWN_TIMEOUT,
            "exit_seconds_median": round(sorted(exit_times)[10], 2),
            "exit_seconds_max": round(max(exit_times), 2),
        },
    )


def test_a_job_that_never_ends_is_interrupted_and_counted(manage):
    job = enqueue(faulty.BusyJob("forever"))  # max_run_time = 1 s
    worker = manage("jobs", "workoff")
    assert worker.wait(timeout=30) == 1, worker.output  # one failed attempt
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("scheduled", 1)  # retried later
    assert job.errors[0]["exception_class"] == "jobs.running.JobTimeout"


def test_a_job_stuck_in_c_code_is_never_retried_beside_itself(manage):
    """Its thread ignores the timeout's interruption, so nobody may record an
    outcome while it runs: the worker stops and exits (status 1, as the
    platform restarts it), and only then does crash recovery take the job."""
    stuck = enqueue(faulty.StuckJob())  # max_run_time 1 s, max_attempts 1
    env = {"JOBS_TEST_INTERRUPT_GRACE": "1"}
    fleet = Fleet(manage, "jobs", "work", "--concurrency", "2", env=env).start()
    wait_for(lambda: Event.objects.filter(name="started", data__key="stuck").exists())
    later = enqueue_many(faulty.CountedJob(n) for n in range(20))
    wait_for(
        lambda: Job.objects.filter(pk__in=[j.pk for j in later], status="succeeded").count() == 20,
        timeout=30,
        message="the other thread to keep working",
    )
    first = fleet.workers[0]
    assert first.wait(timeout=30) == 1, first.output
    assert "thread did not stop within 1s of JobTimeout" in first.output
    assert Job.objects.get(pk=stuck.pk).status == "running"  # nobody wrote it off
    fleet.replace_dead()  # as Heroku restarts a crashed dyno
    wait_for(lambda: Job.objects.filter(pk=stuck.pk, status="failed").exists(), timeout=30)
    stuck.refresh_from_db()
    assert "died during attempt 1" in stuck.last_error
    assert f":{first.pid}:" in stuck.errors[0]["worker"]
    assert Event.objects.filter(name="started", data__key="stuck").count() == 1
    assert fleet.stop() == [0]
