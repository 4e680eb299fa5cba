"""Claiming: order, filters, paused queues, and one claim per job."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from jobs import delay
from jobs.claiming import claim_due_jobs, promote_due_jobs
from jobs.models import Job, PausedQueue
from tests.testapp import jobs as targets


def _enqueue(**options):
    return delay(targets.noop, **options)()


def _claim(limit=100, **filters):
    return claim_due_jobs(worker_name="w", limit=limit, now=timezone.now(), **filters)


@pytest.mark.django_db
class TestOrderAndFilters:
    def test_higher_priority_first_then_run_at_then_id(self):
        now = timezone.now()
        low = _enqueue(priority=-5)
        late = _enqueue(priority=10, run_at=now - timedelta(seconds=1))
        early = _enqueue(priority=10, run_at=now - timedelta(seconds=9))
        tie_a = _enqueue(priority=0, run_at=now - timedelta(seconds=3))
        tie_b = _enqueue(priority=0, run_at=tie_a.run_at)
        urgent = _enqueue(priority=9001)
        claimed = [job.pk for job in _claim()]
        assert claimed == [urgent.pk, early.pk, late.pk, tie_a.pk, tie_b.pk, low.pk]

    def test_one_at_a_time_follows_the_same_order(self):
        jobs = [_enqueue(priority=p) for p in (1, 3, 2)]
        order = [_claim(limit=1)[0].pk for _ in jobs]
        assert order == [jobs[1].pk, jobs[2].pk, jobs[0].pk]
        assert _claim() == []

    def test_claim_marks_running_and_counts_the_attempt(self):
        job = _enqueue()
        [claimed] = claim_due_jobs(worker_name="host:1:abc", limit=1, now=timezone.now())
        job.refresh_from_db()
        assert (job.status, job.attempts, job.locked_by) == ("running", 1, "host:1:abc")
        assert job.locked_at is not None and claimed.attempts == 1
        assert claimed.payload == job.payload

    def test_future_jobs_wait(self):
        _enqueue(run_at=timezone.now() + timedelta(minutes=1))
        assert _claim() == []

    def test_only_ready_jobs(self):
        for status in ("running", "succeeded", "failed"):
            Job.objects.filter(pk=_enqueue().pk).update(status=status)
        assert _claim() == []

    def test_queues(self):
        a = _enqueue(queue="a")
        b = _enqueue(queue="b")
        _enqueue(queue="c")
        assert {job.pk for job in _claim(queues=("a", "b"))} == {a.pk, b.pk}

    def test_min_and_max_priority(self):
        jobs = {p: _enqueue(priority=p) for p in (-10, 0, 5, 10, 20)}
        claimed = {job.priority for job in _claim(min_priority=0, max_priority=10)}
        assert claimed == {0, 5, 10}
        assert {job.pk for job in _claim()} == {jobs[-10].pk, jobs[20].pk}

    def test_paused_queues_are_skipped_until_resumed(self):
        job = _enqueue(queue="emails")
        PausedQueue.objects.create(queue="emails")
        assert _claim() == []
        PausedQueue.objects.filter(queue="emails").delete()
        assert [j.pk for j in _claim()] == [job.pk]


@pytest.mark.django_db
class TestPromotion:
    """Jobs due later wait as scheduled; a promotion makes them ready when due."""

    def _scheduled(self, run_at, queue="default"):
        job = _enqueue(queue=queue, run_at=timezone.now() + timedelta(hours=1))
        Job.objects.filter(pk=job.pk).update(run_at=run_at)  # as time went by
        return job

    def test_a_scheduled_job_is_not_claimed_until_promoted(self):
        job = self._scheduled(timezone.now() - timedelta(seconds=1), queue="emails")
        assert _claim() == []
        assert promote_due_jobs(now=timezone.now()) == ["emails"]
        assert Job.objects.get(pk=job.pk).status == "ready"
        assert [j.pk for j in _claim()] == [job.pk]

    def test_only_due_jobs_soonest_first_a_batch_at_a_time(self):
        now = timezone.now()
        later = self._scheduled(now + timedelta(minutes=1))
        due = [self._scheduled(now - timedelta(seconds=s)) for s in (1, 3, 2)]
        assert len(promote_due_jobs(now=now, limit=2)) == 2
        ready = set(Job.objects.filter(status="ready").values_list("pk", flat=True))
        assert ready == {due[1].pk, due[2].pk}  # the two that came due first
        assert len(promote_due_jobs(now=now, limit=2)) == 1
        assert promote_due_jobs(now=now) == []
        assert Job.objects.get(pk=later.pk).status == "scheduled"

    def test_by_default_the_database_clock_decides(self):
        """A worker whose clock is an hour off promotes neither late nor early."""
        import time_machine

        from jobs.clock import database_now

        now = database_now()
        due = self._scheduled(now - timedelta(seconds=1))
        later = self._scheduled(now + timedelta(minutes=10))
        with time_machine.travel(now - timedelta(hours=1)):
            assert promote_due_jobs() == ["default"]
        with time_machine.travel(now + timedelta(hours=1)):
            assert promote_due_jobs() == []
        statuses = dict(Job.objects.values_list("pk", "status"))
        assert (statuses[due.pk], statuses[later.pk]) == ("ready", "scheduled")

    def test_retry_and_run_now_make_scheduled_jobs_ready(self):
        retried = self._scheduled(timezone.now() + timedelta(hours=2))
        moved = self._scheduled(timezone.now() + timedelta(hours=2))
        assert Job.objects.filter(pk=retried.pk).retry() == 1
        assert Job.objects.filter(pk=moved.pk).run_now() == 1
        assert {j.pk for j in _claim()} == {retried.pk, moved.pk}


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_never_share_a_job():
    """Eight threads, each with its own connection, race for 400 jobs."""
    jobs = [_enqueue() for _ in range(400)]
    claimed: dict[str, list[int]] = {}
    barrier = threading.Barrier(8)

    def claimer(name):
        barrier.wait()
        mine = claimed.setdefault(name, [])
        try:
            while batch := claim_due_jobs(worker_name=name, limit=7, now=timezone.now()):
                mine.extend(job.pk for job in batch)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every_claim = [pk for pks in claimed.values() for pk in pks]
    assert sorted(every_claim) == sorted(job.pk for job in jobs)  # all, exactly once
    assert sum(1 for pks in claimed.values() if pks) > 1  # really concurrent
    for name, pks in claimed.items():
        assert set(Job.objects.filter(pk__in=pks).values_list("locked_by", flat=True)) <= {name}
