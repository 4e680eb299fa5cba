"""`manage.py jobs` operator subcommands (the worker ones run as processes)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from jobs import delay
from jobs.models import Job
from tests.testapp import jobs as targets

pytestmark = pytest.mark.django_db


def run(*args, stdin=None, monkeypatch=None):
    out = StringIO()
    call_command("jobs", *args, stdout=out)
    return out.getvalue()


def _job(status="ready", queue="default", **fields):
    job = delay(targets.noop, queue=queue)()
    Job.objects.filter(pk=job.pk).update(status=status, **fields)
    return job


def test_stats_counts_per_queue_and_status():
    _job(queue="emails")
    _job(queue="emails", status="failed")
    _job(queue="emails", status="scheduled")
    _job(queue="default", status="succeeded")
    _job(queue="default", status="cancelled")
    output = run("stats")
    header = output.splitlines()[0].split()
    assert header == [
        "queue", "ready", "scheduled", "blocked", "running", "succeeded", "failed", "cancelled"
    ]  # fmt: skip
    lines = {line.split()[0]: line.split()[1:] for line in output.splitlines()[1:-1]}
    assert lines == {
        "default": ["0", "0", "0", "0", "1", "0", "1"],
        "emails": ["1", "1", "0", "0", "0", "1", "0"],
    }
    assert "oldest due job: waiting" in output


def test_check_fails_when_a_due_job_waited_too_long():
    assert "no due jobs" in run("check", "--max-age", "60")
    _job(run_at=timezone.now() - timedelta(minutes=5))
    with pytest.raises(CommandError, match="has waited 300s"):
        run("check", "--max-age", "60")
    assert "OK" in run("check", "--max-age", "600")


def test_retry_named_and_all_failed_jobs():
    a = _job(status="failed", attempts=25, failed_at=timezone.now())
    b = _job(status="failed")
    running = _job(status="running")
    assert "Retrying 1 jobs" in run("retry", str(a.pk))
    a.refresh_from_db()
    assert (a.status, a.attempts, a.failed_at) == ("ready", 0, None)
    with pytest.raises(CommandError, match=f"Not failed jobs: {running.pk}"):
        run("retry", str(running.pk))
    assert "Retrying 1 jobs" in run("retry", "--failed")
    b.refresh_from_db()
    assert b.status == "ready"
    with pytest.raises(CommandError, match="Name job ids"):
        run("retry")


def test_clear_deletes_but_never_running_jobs(monkeypatch):
    _job(queue="a")
    _job(queue="a", status="failed")
    _job(queue="b", status="failed")
    running = _job(status="running")
    assert "Deleted 1 failed jobs in queue 'a'" in run(
        "clear", "--failed", "--queue", "a", "--no-input"
    )
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    with pytest.raises(CommandError, match="Nothing deleted"):
        run("clear")
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    assert "Deleted 2 jobs" in run("clear")
    assert list(Job.objects.values_list("pk", flat=True)) == [running.pk]


def test_workoff_exit_status_reports_failures(manage):
    delay(targets.noop)()
    ok = manage("jobs", "workoff")
    assert ok.wait() == 0 and "1 jobs ran: 1 succeeded, 0 failed" in ok.output
    delay(targets.fail)()
    bad = manage("jobs", "workoff", "--queues", "default")
    assert bad.wait() == 1 and "1 jobs ran: 0 succeeded, 1 failed" in bad.output


def test_worker_options_are_validated(manage):
    proc = manage("jobs", "work", "--concurrency", "0")
    assert proc.wait() != 0 and "invalid _positive_int value" in proc.output
