"""Job rows in any state, written straight to the table, for admin and dashboard tests."""

from datetime import timedelta

from django.utils import timezone

from jobs.models import Job

NAME = "tests.testapp.jobs.noop"


def error_entry(attempt=1, message="boom", at=None, worker="host:1:abc"):
    return {
        "exception_class": "builtins.RuntimeError",
        "message": message,
        "traceback": (
            f'Traceback (most recent call last):\n  File "x.py", line 1\nRuntimeError: {message}\n'
        ),
        "attempt": attempt,
        "worker": worker,
        "at": (at or timezone.now()).isoformat(),
    }


def job_fields(status="ready", *, now=None, **fields):
    """Field values for a job that looks as the worker would have left it."""
    now = now or timezone.now()
    values = {
        "name": NAME,
        "payload": {"args": [1, "two"], "kwargs": {"three": 3}},
        "status": status,
    }
    if status == "running":
        values.update(attempts=1, locked_at=now, locked_by="host:1:abc")
    elif status == "succeeded":
        values.update(attempts=1, finished_at=now, result={"ok": True})
    elif status == "failed":
        values.update(
            attempts=3,
            failed_at=now,
            finished_at=now,
            last_error="RuntimeError: boom",
            error_count=3,
            errors=[error_entry(attempt=n, at=now) for n in (1, 2, 3)],
        )
    elif status == "blocked":
        values.update(concurrency_key="smtp", concurrency_limit=1)
    elif status == "cancelled":
        values.update(finished_at=now)
    values.update(fields)
    return values


def make_job(status="ready", **fields) -> Job:
    return Job.objects.create(**job_fields(status, **fields))


def make_many(count, *, queues=("default", "emails", "reports")) -> list[Job]:
    """``count`` jobs spread over every status and ``queues``, in one INSERT."""
    now = timezone.now()
    statuses = list(Job.Status.values)
    rows = [
        Job(
            **job_fields(
                statuses[i % len(statuses)],
                now=now - timedelta(seconds=i),
                queue=queues[i % len(queues)],
                priority=i % 3,
                run_at=now - timedelta(seconds=i),
            )
        )
        for i in range(count)
    ]
    return Job.objects.bulk_create(rows)
