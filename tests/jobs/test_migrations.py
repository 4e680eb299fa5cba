"""Migrations that move data: upgrading a live queue loses and misfiles nothing."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = ("jobs", "0003_notify_trigger")
AFTER = ("jobs", "0004_scheduled_status")


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


@pytest.fixture
def at_0003():
    apps = _migrate(BEFORE)
    yield apps
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes("jobs")[0])


@pytest.mark.django_db(transaction=True)
def test_0004_files_jobs_due_later_as_scheduled_and_back(at_0003):
    OldJob = at_0003.get_model("jobs", "Job")
    now = timezone.now()

    def row(name, status, run_at):
        return OldJob.objects.create(
            name=name, payload={}, status=status, run_at=run_at, created_at=now, updated_at=now
        ).pk

    ids = {
        "due": row("due", "ready", now - timedelta(minutes=1)),
        "later": row("later", "ready", now + timedelta(hours=1)),
        "done": row("done", "succeeded", now + timedelta(hours=1)),
    }
    Job = _migrate(AFTER).get_model("jobs", "Job")
    statuses = dict(Job.objects.values_list("name", "status"))
    assert statuses == {"due": "ready", "later": "scheduled", "done": "succeeded"}

    Job = _migrate(BEFORE).get_model("jobs", "Job")
    statuses = dict(Job.objects.values_list("name", "status"))
    assert statuses == {"due": "ready", "later": "ready", "done": "succeeded"}
    assert set(Job.objects.values_list("pk", flat=True)) == set(ids.values())
