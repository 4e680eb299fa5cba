"""Claiming's cost stays flat as history grows: the plans use partial indexes."""

import json
import re

import pytest
from django.db import connection
from django.utils import timezone

from jobs.claiming import claim_statement, promote_due_jobs
from jobs.models import Job
from tests.jobs.bigtable import add_history_and_future

pytestmark = pytest.mark.django_db

FINISHED, FUTURE, DUE = 20_000, 5_000, 20
READY_INDEXES = {"jobs_job_ready_idx", "jobs_job_ready_run_at_idx"}
SCHEDULED_INDEX = "jobs_job_scheduled_idx"


@pytest.fixture
def big_table():
    """Mostly history and far-future rows, a few due: the shape of a live queue."""
    now = timezone.now()
    add_history_and_future(FINISHED, FUTURE, now=now)
    Job.objects.bulk_create(
        Job(name="due", payload={}, run_at=now, created_at=now, updated_at=now) for _ in range(DUE)
    )
    assert Job.objects.count() == FINISHED + FUTURE + DUE


def _plan(sql, params):
    prefix = "EXPLAIN " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql, params)
        return "\n".join(str(row) for row in cursor.fetchall())


@pytest.mark.parametrize(
    "filters",
    [{}, {"queues": ("default", "emails")}, {"min_priority": -5, "max_priority": 5}],
    ids=["all-queues", "some-queues", "priority-range"],
)
def test_the_claim_reads_only_the_ready_index(big_table, filters):
    sql, params = claim_statement(limit=4, now=timezone.now(), worker_name="w", **filters)
    plan = _plan(sql, params)
    # Either partial index on ready rows will do: both skip all history.
    assert READY_INDEXES & set(re.findall(r"jobs_job_\w+_idx", plan)), plan
    assert "Seq Scan on jobs_job" not in plan and "'SCAN jobs_job'" not in plan, plan


def _scans(plan):
    """Every node of a PostgreSQL JSON plan."""
    yield plan
    for child in plan.get("Plans", ()):
        yield from _scans(child)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN ANALYZE is PostgreSQL's")
def test_the_claim_never_reads_future_jobs(big_table):
    """The future jobs all outrank the due ones; in an index ordered by
    priority the claim would walk past every one of them. Scheduled jobs live
    apart, so the claim reads the due jobs it takes and nothing else."""
    sql, params = claim_statement(limit=4, now=timezone.now(), worker_name="w")
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        [[plan]] = cursor.fetchall()
    if isinstance(plan, str):
        plan = json.loads(plan)
    scans = [
        node
        for node in _scans(plan[0]["Plan"])
        if node.get("Relation Name") == "jobs_job" and "Scan" in node["Node Type"]
    ]
    assert scans, plan
    for node in scans:
        assert node["Actual Rows"] + node.get("Rows Removed by Filter", 0) <= DUE, node


def test_promotion_reads_only_the_scheduled_index(big_table):
    captured = []

    def capture(execute, sql, params, many, context):
        if "status = 'scheduled' AND run_at" in sql:
            captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        assert promote_due_jobs(now=timezone.now()) == []  # the future is not due
    plan = _plan(*captured[0])
    assert SCHEDULED_INDEX in plan, plan
    assert "Seq Scan on jobs_job" not in plan and "'SCAN jobs_job'" not in plan, plan


@pytest.mark.parametrize(
    ("status", "indexes"),
    [("ready", READY_INDEXES), ("scheduled", {SCHEDULED_INDEX})],
)
def test_the_next_due_time_uses_its_index(big_table, status, indexes):
    sql, params = (
        Job.objects.filter(status=status, run_at__gt=timezone.now())
        .order_by("run_at")
        .values("run_at")[:1]
        .query.sql_with_params()
    )
    plan = _plan(sql, params)
    assert indexes & set(re.findall(r"jobs_job_\w+_idx", plan)), plan
