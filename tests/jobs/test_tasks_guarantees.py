"""What JobsBackend promises beyond Django's own task tests: aliases, inline
mode, the system check, and task_finished exactly once for every task that ends."""

import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.tasks import TaskResultStatus, default_task_backend, task_backends
from django.utils import timezone

from jobs.claiming import claim_due_jobs
from jobs.maintenance import recover_abandoned_jobs
from jobs.models import Job
from jobs.running import failure_hooks
from jobs.testing import work_off
from tests.jobs.waiting import wait_for
from tests.testapp import conformance as test_tasks
from tests.testapp.conformance import BulkBackend
from tests.testapp.models import Event

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def two_aliases(settings):
    settings.TASKS = {
        "default": {"BACKEND": "jobs.backends.JobsBackend", "QUEUES": ["default"]},
        "bulk": {"BACKEND": "tests.testapp.conformance.BulkBackend", "QUEUES": ["bulk"]},
    }


def finished(task_signals):
    return [s for s in task_signals if s[0] == "finished"]


# -- aliases --------------------------------------------------------------------------


def test_a_task_enqueued_through_another_alias_runs_as_that_alias(task_signals):
    bulk_task = test_tasks.calculate_meaning_of_life.using(backend="bulk", queue_name="bulk")
    result = bulk_task.enqueue()
    assert work_off().outcomes == ("succeeded",)
    result.refresh()
    assert (result.status, result.return_value, result.backend) == ("SUCCESSFUL", 42, "bulk")
    assert result.task == bulk_task
    # Whichever backend reads it, the result is the bulk alias's.
    assert default_task_backend.get_result(result.id).backend == "bulk"
    assert [(s[0], s[1], s[4]) for s in task_signals] == [
        ("enqueued", BulkBackend, "bulk"),
        ("started", BulkBackend, "bulk"),
        ("finished", BulkBackend, "bulk"),
    ]


def test_each_alias_validates_its_own_queues():
    with pytest.raises(Exception, match="Queue 'bulk' is not valid"):
        test_tasks.noop_task.using(queue_name="bulk")
    assert task_backends["bulk"].check() == []


# -- inline mode ------------------------------------------------------------------------


@pytest.fixture
def inline(settings):
    settings.JOBS = {**settings.JOBS, "DELAY_JOBS": False}


def test_inline_tasks_carry_their_real_id_and_signal_in_order(inline, task_signals):
    result = test_tasks.get_task_id.enqueue()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == result.id  # context.task_result.id, the row's
    assert Job.objects.get(pk=int(result.id)).status == "succeeded"
    assert [(s[0], s[2], s[3]) for s in task_signals] == [
        ("enqueued", TaskResultStatus.READY, result.id),
        ("started", TaskResultStatus.RUNNING, result.id),
        ("finished", TaskResultStatus.SUCCESSFUL, result.id),
    ]


def test_an_inline_failure_reaches_the_caller_after_its_signals(inline, task_signals):
    with pytest.raises(ValueError, match="This Task failed due to ValueError"):
        test_tasks.failing_task_value_error.enqueue()
    job = Job.objects.get()
    assert job.status == "failed" and job.errors[0]["exception_class"] == "builtins.ValueError"
    assert [(s[0], s[2], s[3]) for s in task_signals] == [
        ("enqueued", TaskResultStatus.READY, str(job.pk)),
        ("started", TaskResultStatus.RUNNING, str(job.pk)),
        ("finished", TaskResultStatus.FAILED, str(job.pk)),
    ]
    result = default_task_backend.get_result(str(job.pk))
    assert (
        result.status == TaskResultStatus.FAILED and result.errors[0].exception_class is ValueError
    )


# -- task_finished, exactly once ---------------------------------------------------------


def recover_as_a_worker_does():
    """Crash recovery, as a worker's dispatcher runs it: recover, then the hooks.

    A job whose thread was stuck (its worker exits holding the claim) comes
    back the same way, once that worker is gone.
    """
    # The claim is older than the heartbeat timeout, and its worker is gone.
    Job.objects.filter(status="running").update(locked_at=timezone.now() - timedelta(minutes=5))
    for recovered in recover_abandoned_jobs(timezone.now()):
        failure_hooks(recovered.performable, recovered.job, recovered.error, recovered.outcome)


def test_a_task_failed_for_good_by_crash_recovery_finishes_once(settings, task_signals):
    settings.JOBS = {**settings.JOBS, "MAX_ATTEMPTS": 1}
    result = test_tasks.noop_task.enqueue()
    claim_due_jobs(worker_name="died-mid-task", limit=1, now=timezone.now())
    recover_as_a_worker_does()
    recover_as_a_worker_does()
    assert [(s[0], s[2], s[3]) for s in finished(task_signals)] == [
        ("finished", TaskResultStatus.FAILED, result.id)
    ]
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class_path == "jobs.maintenance.WorkerLost"


def test_a_task_recovered_for_a_retry_finishes_once_when_it_succeeds(settings, task_signals):
    settings.JOBS = {**settings.JOBS, "MAX_ATTEMPTS": 2}
    test_tasks.noop_task.enqueue()
    claim_due_jobs(worker_name="died-mid-task", limit=1, now=timezone.now())
    recover_as_a_worker_does()
    assert finished(task_signals) == []  # back to the queue: not finished
    assert work_off().outcomes == ("succeeded",)
    assert [(s[0], s[2]) for s in finished(task_signals)] == [("finished", "SUCCESSFUL")]


@pytest.mark.slow
def test_a_task_stuck_in_c_code_finishes_once_through_crash_recovery(manage):
    """The worker whose thread is stuck exits (status 1) without an outcome or
    a signal; a restarted worker takes the task back and sends task_finished."""
    result = test_tasks.stuck_in_c_code.enqueue()
    Job.objects.filter(pk=int(result.id)).update(max_run_time=1, max_attempts=1)
    stuck = manage("jobs", "work", env={"JOBS_TEST_INTERRUPT_GRACE": "1"})
    wait_for(lambda: Event.objects.filter(name="stuck_task_started").exists())
    assert stuck.wait(timeout=30) == 1, stuck.output
    assert not Event.objects.filter(name="stuck_task_finished").exists()
    rescuer = manage("jobs", "work")
    wait_for(lambda: Event.objects.filter(name="stuck_task_finished").exists(), timeout=30)
    rescuer.send_signal(signal.SIGTERM)
    assert rescuer.wait(timeout=20) == 0, rescuer.output
    assert [e.data for e in Event.objects.filter(name="stuck_task_finished")] == [
        {"id": result.id, "status": "FAILED"}
    ]
    assert Job.objects.get(pk=int(result.id)).status == "failed"


@pytest.mark.parametrize("then_fail", [False, True])
def test_a_worker_that_lost_its_claim_sends_no_task_finished(settings, task_signals, then_fail):
    settings.JOBS = {**settings.JOBS, "MAX_ATTEMPTS": 1}
    result = test_tasks.loses_its_claim.enqueue(then_fail=then_fail)
    assert work_off().outcomes == ("lost",)
    assert [s[0] for s in task_signals] == ["enqueued", "started"]
    # The row is left to whoever holds the claim now.
    job = Job.objects.get(pk=int(result.id))
    assert (job.status, job.lease, job.errors, job.result) == ("running", "taken-over", [], None)


# -- the system check -----------------------------------------------------------------------


def test_check_reports_jobs_backend_without_jobs_installed(tmp_path):
    """A project whose app defines a task for JobsBackend but forgot "jobs"."""
    app = tmp_path / "bare_app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "tasks.py").write_text(
        "from django.tasks import task\n\n@task\ndef hello():\n    pass\n"
    )
    (app / "models.py").write_text("from . import tasks  # noqa: F401\n")
    (tmp_path / "bare_settings.py").write_text(
        "SECRET_KEY = 'x'\n"
        "INSTALLED_APPS = ['bare_app']\n"
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': ':memory:'}}\n"
        "TASKS = {'default': {'BACKEND': 'jobs.backends.JobsBackend'}}\n"
    )
    checked = subprocess.run(
        [sys.executable, "-m", "django", "check", "--settings", "bare_settings"],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 1, checked.stderr
    assert "(jobs.E022) TASKS['default'] uses jobs.backends.JobsBackend" in checked.stderr
    assert "'jobs' is not in INSTALLED_APPS" in checked.stderr
    assert "Traceback" not in checked.stderr
