"""Concurrency keys: at most concurrency_limit jobs of a key ready or running."""

from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from jobs import delay
from jobs.claiming import claim_due_jobs, promote_due_jobs
from jobs.maintenance import recover_abandoned_jobs
from jobs.models import Job, Worker
from jobs.running import fail_attempt, record_success, release
from jobs.slots import unblock
from jobs.testing import work_off
from tests.testapp import faulty, keyed


def _claim(limit=10):
    return claim_due_jobs(worker_name="w", limit=limit, now=timezone.now())


def _statuses():
    return list(Job.objects.order_by("pk").values_list("status", flat=True))


# Real commits: a keyed job gets its slot once its enqueue commits.
pytestmark = pytest.mark.django_db(transaction=True)


def test_one_job_of_a_key_is_ready_the_others_wait_blocked():
    for n in range(3):
        delay(faulty.records, concurrency_key="k")(n)
    assert _statuses() == ["ready", "blocked", "blocked"]
    [claimed] = _claim()  # a claim never reads blocked jobs
    assert claimed.payload["args"] == [0]
    assert _claim() == []


def test_a_success_hands_the_slot_to_the_next_job_in_run_order():
    delay(faulty.records, concurrency_key="k")(0)
    delay(faulty.records, concurrency_key="k")(1)
    delay(faulty.records, concurrency_key="k", priority=5)(2)  # runs before 1
    [first] = _claim()
    assert record_success(first, timezone.now(), None)
    assert _statuses() == ["succeeded", "blocked", "ready"]


def test_a_limit_of_two_lets_two_run():
    for n in range(4):
        delay(keyed.send_through_smtp)(n)  # @limits(concurrency_key="smtp", concurrency_limit=2)
    assert _statuses() == ["ready", "ready", "blocked", "blocked"]
    assert len(_claim()) == 2


def test_other_keys_and_keyless_jobs_are_not_held_up():
    for key in ("a", "a", "b", None):
        delay(faulty.records, concurrency_key=key)(key)
    assert _statuses() == ["ready", "blocked", "ready", "ready"]
    assert len(_claim()) == 3


@pytest.mark.parametrize("ending", ["retry", "failed", "cancelled", "released"])
def test_every_way_out_of_running_frees_the_slot(ending):
    delay(faulty.records, concurrency_key="k")(0)
    delay(faulty.records, concurrency_key="k")(1)
    [running] = _claim()
    running.max_attempts = 1 if ending == "failed" else 5
    now = timezone.now()
    if ending == "released":
        assert release(running, now)
    elif ending == "cancelled":
        Job.objects.filter(pk=running.pk).cancel()
        running.cancel_requested_at = now
        assert fail_attempt(running, RuntimeError("x"), now=now) == "cancelled"
    else:
        assert fail_attempt(running, RuntimeError("x"), now=now) == ending
    # The slot went to the next job in run order: a released job is first
    # in line again, as if it had never started.
    expected = {
        "retry": ["scheduled", "ready"],
        "failed": ["failed", "ready"],
        "cancelled": ["cancelled", "ready"],
        "released": ["ready", "blocked"],
    }
    assert _statuses() == expected[ending]


def test_a_retry_due_at_once_waits_blocked_not_ready():
    delay(faulty.records, concurrency_key="k")(0)
    delay(faulty.records, concurrency_key="k")(1)
    [running] = _claim()
    assert fail_attempt(running, RuntimeError("x"), now=timezone.now(), retry_now=True) == "retry"
    assert _statuses() == ["blocked", "ready"]


def test_a_dead_workers_slot_is_freed_by_crash_recovery():
    delay(faulty.records, concurrency_key="k")(0)
    delay(faulty.records, concurrency_key="k")(1)
    claim_due_jobs(worker_name="dead", limit=1, now=timezone.now())
    Worker.objects.create(
        name="dead", hostname="elsewhere", pid=1, last_heartbeat_at=timezone.now()
    )
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        [recovered] = recover_abandoned_jobs(now=timezone.now())
    assert recovered.outcome == "retry"
    assert _statuses() == ["blocked", "ready"]


def test_cancelling_a_ready_job_frees_its_slot():
    first = delay(faulty.records, concurrency_key="k")(0)
    delay(faulty.records, concurrency_key="k")(1)
    assert first.cancel() == "cancelled"
    assert _statuses() == ["cancelled", "ready"]


def test_discarding_a_ready_job_frees_its_slot():
    first = delay(faulty.records, concurrency_key="k")(0)
    delay(faulty.records, concurrency_key="k")(1)
    assert Job.objects.filter(pk=first.pk).discard() == 1
    assert _statuses() == ["ready"]


def test_retry_and_run_now_put_keyed_jobs_behind_the_limit():
    delay(faulty.records, concurrency_key="k")(0)
    later = delay(faulty.records, concurrency_key="k", run_at=timedelta(hours=1))(1)
    failed = delay(faulty.records, concurrency_key="k")(2)
    Job.objects.filter(pk=failed.pk).update(status="failed")
    assert _statuses() == ["ready", "scheduled", "failed"]
    Job.objects.filter(pk=later.pk).run_now()
    Job.objects.filter(pk=failed.pk).retry()
    assert _statuses() == ["ready", "blocked", "blocked"]


def test_a_scheduled_keyed_job_waits_for_a_slot_when_it_comes_due():
    busy = delay(faulty.records, concurrency_key="k")(0)
    delay(faulty.records, concurrency_key="k", run_at=timedelta(minutes=1))(1)
    delay(faulty.records, concurrency_key="free", run_at=timedelta(minutes=1))(2)
    assert _statuses() == ["ready", "scheduled", "scheduled"]
    later = timezone.now() + timedelta(minutes=2)
    assert sorted(promote_due_jobs(now=later)) == ["default", "default"]
    assert _statuses() == ["ready", "blocked", "ready"]
    Job.objects.filter(pk=busy.pk).cancel()
    assert _statuses() == ["cancelled", "ready", "ready"]


def test_the_sweep_fills_a_slot_whose_filling_was_missed():
    delay(faulty.records, concurrency_key="k")(0)
    Job.objects.update(status="blocked")  # as if the enqueuer's unblock had failed
    assert unblock(Job) == 1
    assert _statuses() == ["ready"]
    assert unblock(Job) == 0


def test_the_enqueuing_transaction_fills_the_slot_when_it_commits():
    with transaction.atomic():
        delay(faulty.records, concurrency_key="k")(0)
        assert _statuses() == ["blocked"]  # no lock taken inside the caller's transaction
    assert _statuses() == ["ready"]


def test_a_limit_lowered_for_new_jobs_is_the_candidates_own():
    for _ in range(2):
        delay(faulty.records, concurrency_key="k", concurrency_limit=2)(0)
    delay(faulty.records, concurrency_key="k", concurrency_limit=1)(1)
    # Two hold the key's slots: the new job, limited to one, must wait.
    assert _statuses() == ["ready", "ready", "blocked"]


@pytest.mark.django_db(transaction=False)
def test_work_off_runs_keyed_jobs_inside_a_tests_transaction():
    for n in range(3):
        delay(faulty.records, concurrency_key="k")(n)
    assert _statuses() == ["blocked"] * 3  # their enqueue has not committed
    assert work_off().succeeded == 3
