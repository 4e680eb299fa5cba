"""Rows no enqueue would write: each fails with a clear message, the worker
lives on, and nothing forbidden is ever called."""

import pytest
from django.db import DatabaseError, connection, transaction

from jobs import delay
from jobs.models import Job
from tests.testapp import jobs as targets
from tests.testapp.models import Photo

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def _row(name, **call):
    return Job.objects.create(name=name, payload={"v": 1, **call})


def test_poison_rows_fail_clearly_and_the_worker_carries_on(manage, tmp_path):
    marker = tmp_path / "pwned"
    photo = Photo.objects.create(title="gone soon")
    poison = {
        "unknown path": (
            _row("unknown", function="tests.testapp.jobs.no_such_function", args=[], kwargs={}),
            "Cannot import tests.testapp.jobs.no_such_function",
        ),
        "os.system": (
            _row("system", function="os.system", args=[f"touch {marker}"], kwargs={}),
            "Refusing to call os.system",
        ),
        "builtins.eval": (
            _row("eval", function="builtins.eval", args=[f"open({str(marker)!r}, 'w')"], kwargs={}),
            "Refusing to call builtins.eval",
        ),
        "subprocess.run": (
            _row("run", function="subprocess.run", args=[["touch", str(marker)]], kwargs={}),
            "Refusing to call subprocess.run",
        ),
        "deleted instance": (delay(photo).upload(), "Photo with pk="),
        "10 MB payload": (
            _row("huge", function="tests.testapp.jobs.noop", args=["x" * 10_000_000], kwargs={}),
            "exceeds JOBS['MAX_PAYLOAD_BYTES']",
        ),
    }
    photo.delete()
    healthy = delay(targets.noop, priority=-100)()  # runs last, after all the poison

    worker = manage("jobs", "workoff")
    assert worker.wait(timeout=60) == 1, worker.output  # failures, not a crash
    assert f"{len(poison) + 1} jobs ran: 1 succeeded, {len(poison)} failed" in worker.output
    assert "Traceback" not in worker.output
    for what, (job, message) in poison.items():
        job.refresh_from_db()
        assert (job.status, job.attempts) == ("failed", 1), what
        assert message in job.last_error, (what, job.last_error)
    healthy.refresh_from_db()
    assert healthy.status == "succeeded"
    assert not marker.exists()


@pytest.mark.django_db
def test_malformed_json_cannot_even_be_stored():
    """The column is validated by both databases (jsonb; SQLite's JSON_VALID check)."""
    job = _row("bad", function="tests.testapp.jobs.noop")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE jobs_job SET payload = '{\"v\": 1, ' WHERE id = %s", [job.pk])
