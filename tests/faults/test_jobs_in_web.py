"""One dyno: JOBS_IN_WEB=1 runs jobs inside gunicorn's worker processes.

Real gunicorn from the Procfile (2 worker processes of 4 threads) and no
`jobs work` process at all: signups' emails still go out, a deploy's SIGTERM
puts a long job back unattempted within the grace, a killed gunicorn worker's
job is recovered, and nothing else (migrations, commands, tests) runs jobs.
"""

import os
import signal
import threading
import time

import pytest
from django.core.management import call_command
from django.test import override_settings

from jobs import delay, enqueue
from jobs.embedded import start_beside_web, stop_beside_web
from jobs.models import Job, Worker
from signupdemo.models import OutboxMessage
from tests.jobs.waiting import wait_for
from tests.testapp import faulty
from tests.testapp import jobs as targets
from tests.testapp.models import Event

from .web import ARTIFACTS, Visitor, running_web

pytestmark = [pytest.mark.faults, pytest.mark.slow]

PASSWORD = "correct horse battery staple 42"
ONE_DYNO = {"JOBS_IN_WEB": "1", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4"}


def _in_web_workers(count=2):
    wait_for(
        lambda: Worker.objects.filter(kind="in-web").count() == count,
        timeout=30,
        message=f"{count} in-web workers",
    )
    return list(Worker.objects.filter(kind="in-web"))


def test_signup_emails_go_out_with_no_worker_process(subprocess_env):
    with running_web(subprocess_env, ARTIFACTS / "in_web_signup", **ONE_DYNO) as web:
        workers = _in_web_workers()
        gunicorn_master = web.popen.pid
        assert gunicorn_master not in {worker.pid for worker in workers}  # never in the master
        visitor = Visitor(web.url)
        signed_up = visitor.post_form(
            "/signup/", {"email": "ada@example.com", "name": "Ada", "password": PASSWORD}
        )
        assert signed_up.status == 302, signed_up.body
        wait_for(
            lambda: OutboxMessage.objects.filter(to__icontains="ada@example.com").exists(),
            timeout=30,
            message="the confirmation email",
        )
        assert "started pools=*:2" in web.output  # two job threads in each process


def test_sigterm_puts_a_long_job_back_unattempted_within_the_grace(subprocess_env):
    job = delay(targets.busy_forever)()
    with running_web(subprocess_env, ARTIFACTS / "in_web_sigterm", **ONE_DYNO) as web:
        wait_for(lambda: Event.objects.filter(name="busy_started").exists(), message="job start")
        started = time.monotonic()
        web.stop(timeout=30)
        elapsed = time.monotonic() - started
    job.refresh_from_db()
    assert (job.status, job.attempts, job.locked_by) == ("ready", 0, "")
    assert elapsed < 30, web.output  # Heroku's SIGKILL comes at 30 s
    assert not Worker.objects.exists()  # each process unregistered


def test_a_killed_gunicorn_worker_leaves_no_job_stranded(subprocess_env):
    job = enqueue(faulty.SlowFirstAttempt(seconds=60))
    with running_web(subprocess_env, ARTIFACTS / "in_web_sigkill", **ONE_DYNO):
        first = wait_for(lambda: Event.objects.filter(name="slow_first").first())
        os.kill(first.data["pid"], signal.SIGKILL)  # the master forks a new worker
        wait_for(lambda: Job.objects.filter(pk=job.pk, status="succeeded").exists(), timeout=60)
    job.refresh_from_db()
    assert job.attempts == 2 and job.result.startswith("attempt 2")
    assert "died during attempt 1" in job.last_error


def test_migrations_commands_and_tests_start_no_job_threads(manage):
    """Only the web server's hooks start a loop: with IN_WEB on, a release
    phase's migrate, any other command, or this very test run, run no jobs."""
    migrate = manage("migrate", "--no-input", env={"JOBS_IN_WEB": "1"})
    assert migrate.wait(timeout=60) == 0, migrate.output
    assert "started pools" not in migrate.output
    with override_settings(JOBS={"IN_WEB": True}):
        call_command("check")
        assert not [t for t in threading.enumerate() if t.name.startswith("jobs-")]
    assert not Worker.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_process_starts_its_loop_once():
    with override_settings(JOBS={"IN_WEB": True, "IN_WEB_CONCURRENCY": 1}):
        loop = start_beside_web(lambda: True, graceful_timeout=20)
        try:
            assert start_beside_web(lambda: True, graceful_timeout=20) is loop
            wait_for(lambda: Worker.objects.filter(name=loop.name, kind="in-web").exists())
        finally:
            assert stop_beside_web(graceful_timeout=20) == 0
    assert start_beside_web(lambda: True, graceful_timeout=20) is None  # IN_WEB off
