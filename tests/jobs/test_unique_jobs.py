"""Unique keys: while a job with the key waits, queueing another returns it."""

import threading
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

from jobs import delay, enqueue, enqueue_many
from jobs.claiming import claim_due_jobs
from jobs.models import Job
from jobs.running import fail_attempt, release
from tests.pglog import ServerLog, lock_trouble
from tests.testapp import faulty, keyed


def _claim(limit=10):
    return claim_due_jobs(worker_name="w", limit=limit, now=timezone.now())


@pytest.mark.django_db
class TestEnqueue:
    def test_a_second_enqueue_while_the_first_waits_returns_the_first(self):
        first = delay(faulty.records, unique_key="k")(1)
        second = delay(faulty.records, unique_key="k")(2)
        assert second.pk == first.pk
        assert second.payload["args"] == [1]  # the job that waits, as it was queued
        assert Job.objects.count() == 1

    @pytest.mark.parametrize("status", ["scheduled", "blocked"])
    def test_scheduled_and_blocked_jobs_hold_their_key_too(self, status):
        if status == "scheduled":
            first = delay(faulty.records, unique_key="k", run_at=timedelta(hours=1))(1)
        else:
            delay(faulty.records, concurrency_key="c")(0)  # takes the key's one slot
            first = delay(faulty.records, unique_key="k", concurrency_key="c")(1)
        assert Job.objects.get(pk=first.pk).status == status
        assert delay(faulty.records, unique_key="k")(2).pk == first.pk

    def test_once_the_job_started_or_ended_a_new_one_is_added(self):
        first = delay(faulty.records, unique_key="k")(1)
        [claimed] = _claim()
        assert claimed.pk == first.pk
        second = delay(faulty.records, unique_key="k")(2)  # the first is running
        assert second.pk != first.pk
        for status in ("succeeded", "failed", "cancelled"):
            Job.objects.filter(pk=second.pk).update(status=status)
            third = delay(faulty.records, unique_key="k")(3)
            assert third.pk != second.pk
            Job.objects.filter(pk=third.pk).delete()

    def test_keys_are_separate(self):
        assert (
            delay(faulty.records, unique_key="a")(1).pk
            != delay(faulty.records, unique_key="b")(1).pk
        )
        assert Job.objects.count() == 2

    def test_inside_a_transaction_that_rolls_back_nothing_is_kept(self):
        with pytest.raises(RuntimeError), transaction.atomic():
            delay(faulty.records, unique_key="k")(1)
            raise RuntimeError("roll back")
        assert delay(faulty.records, unique_key="k")(2).payload["args"] == [2]

    def test_limits_declares_a_key_from_the_arguments(self):
        assert keyed.welcome.jobs_limits.keys() == {"unique_key"}
        first = delay(keyed.welcome)(7)
        assert first.unique_key == "welcome:7"
        assert delay(keyed.welcome)(7).pk == first.pk
        assert delay(keyed.welcome)(8).pk != first.pk
        # A key given at the call wins over the declared one.
        assert delay(keyed.welcome, unique_key="other")(7).unique_key == "other"

    def test_handle_asynchronously_gives_key_callables_the_instance_first(self):
        job = keyed.Account(5).refresh(full=True)
        assert (job.unique_key, job.concurrency_key) == ("refresh:5:True", "account:5")
        assert keyed.Account(5).refresh(full=True).pk == job.pk
        assert keyed.Account(5).refresh().pk != job.pk

    def test_job_objects_declare_keys_as_attributes_or_methods(self):
        job = enqueue(keyed.ReportJob("daily"))
        assert (job.unique_key, job.concurrency_key, job.concurrency_limit) == (
            "report:daily",
            "reports",
            3,
        )
        assert enqueue(keyed.ReportJob("daily")).pk == job.pk

    def test_enqueue_many_keeps_one_job_per_waiting_key(self):
        jobs = enqueue_many([keyed.ReportJob("a"), keyed.ReportJob("b"), keyed.ReportJob("a")])
        assert jobs[0].pk == jobs[2].pk != jobs[1].pk
        assert Job.objects.count() == 2

    def test_a_task_declares_its_keys_with_limits_under_task(self):
        first = keyed.sync_account.enqueue("acme")
        again = keyed.sync_account.enqueue("acme")
        assert again.id == first.id
        job = Job.objects.get(pk=first.id)
        assert (job.unique_key, job.concurrency_key, job.concurrency_limit) == (
            "sync:acme",
            "sync",
            1,
        )

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"unique_key": ""}, "unique_key must be a non-empty string"),
            ({"unique_key": "x" * 256}, "at most 255 characters"),
            ({"unique_key": 42}, "unique_key must be a non-empty string"),
            ({"concurrency_key": ""}, "concurrency_key must be a non-empty string"),
            ({"concurrency_key": "c", "concurrency_limit": 0}, "positive integer"),
            ({"concurrency_key": "c", "concurrency_limit": True}, "positive integer"),
            ({"concurrency_limit": 2}, "needs a concurrency_key"),
        ],
    )
    def test_bad_keys_fail_at_the_call_and_queue_nothing(self, options, message):
        with pytest.raises(ValueError, match=message):
            delay(faulty.records, **options)(1)
        assert not Job.objects.exists()


@pytest.mark.django_db
class TestComingBack:
    """A job that comes back to the queue while another waits with its key
    yields the key: both run, neither is lost nor fails to come back."""

    def _running_and_waiting(self):
        first = delay(faulty.records, unique_key="k")(1)
        [running] = _claim()
        waiting = delay(faulty.records, unique_key="k")(2)
        assert waiting.pk != first.pk
        return running, waiting

    def test_a_retry_yields_the_key(self):
        running, waiting = self._running_and_waiting()
        assert fail_attempt(running, RuntimeError("x"), now=timezone.now()) == "retry"
        running.refresh_from_db()
        waiting.refresh_from_db()
        assert (running.status, running.unique_key) == ("scheduled", None)
        assert waiting.unique_key == "k"

    def test_a_release_yields_the_key(self):
        running, waiting = self._running_and_waiting()
        assert release(running, timezone.now())
        running.refresh_from_db()
        assert (running.status, running.unique_key) == ("ready", None)
        assert Job.objects.get(pk=waiting.pk).unique_key == "k"

    def test_alone_it_keeps_its_key(self):
        delay(faulty.records, unique_key="k")(1)
        [running] = _claim()
        assert fail_attempt(running, RuntimeError("x"), now=timezone.now()) == "retry"
        assert Job.objects.get(pk=running.pk).unique_key == "k"
        assert delay(faulty.records, unique_key="k")(2).pk == running.pk

    def test_retrying_two_failed_jobs_with_one_key_gives_it_to_one(self):
        for n in (1, 2):
            delay(faulty.records, unique_key="k")(n)
            _claim()
        Job.objects.update(status="failed")
        assert Job.objects.all().retry() == 2
        assert sorted(Job.objects.values_list("unique_key", flat=True), key=str) == [None, "k"]
        assert set(Job.objects.values_list("status", flat=True)) == {"ready"}


@pytest.mark.django_db(transaction=True)
def test_a_hundred_concurrent_enqueues_with_one_key_leave_one_job():
    server_log = ServerLog()
    barrier = threading.Barrier(20)
    returned, errors = [], []

    def enqueue_five():
        try:
            barrier.wait()
            for n in range(5):
                returned.append(delay(faulty.records, unique_key="once")(n).pk)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=enqueue_five) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(returned) == 100
    assert Job.objects.count() == 1
    assert set(returned) == {Job.objects.get().pk}
    logged = server_log.since()
    assert lock_trouble(logged) == []
    assert "duplicate key" not in logged  # ON CONFLICT skipped them, nothing failed
