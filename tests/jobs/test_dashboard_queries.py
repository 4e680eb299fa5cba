"""The dashboard on a big table: a fixed number of queries, keyset pages, no COUNT."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.dashboard import queries
from jobs.models import Job, PausedQueue, Worker
from tests.jobs.jobrows import make_job, make_many

pytestmark = pytest.mark.django_db

# Session and user lookups that every logged-in request makes.
AUTH_QUERIES = 2


@pytest.fixture
def big_table():
    """300 jobs over every status and three queues, and some workers."""
    jobs = make_many(300)
    for n in range(5):
        Worker.objects.create(name=f"host:{n}:abc", hostname="host", pid=n)
    PausedQueue.objects.create(queue="reports")
    return jobs


def _sql(captured):
    return [q["sql"].upper() for q in captured.captured_queries]


class TestQueryCounts:
    def test_overview(self, admin_client, big_table, django_assert_max_num_queries):
        with django_assert_max_num_queries(AUTH_QUERIES + 5):
            response = admin_client.get(reverse("jobs:overview"))
        assert len(response.context["overview"].queues) == 3

    def test_stats_json(self, admin_client, big_table, django_assert_max_num_queries):
        with django_assert_max_num_queries(AUTH_QUERIES + 5):
            admin_client.get(reverse("jobs:stats"))

    @pytest.mark.parametrize("status", Job.Status.values)
    def test_lists_use_one_query_and_never_count(
        self, admin_client, big_table, status, django_assert_max_num_queries
    ):
        url = reverse("jobs:list", args=[status])
        with django_assert_max_num_queries(AUTH_QUERIES + 1) as captured:
            response = admin_client.get(url)
        assert len(response.context["page"].jobs) == queries.PAGE_SIZE
        [page_query] = [sql for sql in _sql(captured) if "JOBS_JOB" in sql]
        assert "COUNT(" not in page_query
        assert f"LIMIT {queries.PAGE_SIZE + 1}" in page_query
        # The big JSON columns stay in the database.
        assert '"PAYLOAD"' not in page_query and '"ERRORS"' not in page_query

        next_url = response.context["next_url"]
        with django_assert_max_num_queries(AUTH_QUERIES + 1):
            admin_client.get(next_url)

    def test_workers(self, admin_client, big_table, django_assert_max_num_queries):
        with django_assert_max_num_queries(AUTH_QUERIES + 2):
            response = admin_client.get(reverse("jobs:workers"))
        assert len(response.context["workers"].workers) == 5

    def test_job_page(self, admin_client, big_table, django_assert_max_num_queries):
        job = Job.objects.filter(status="failed").first()
        with django_assert_max_num_queries(AUTH_QUERIES + 1):
            admin_client.get(reverse("jobs:job", args=[job.pk]))

    def test_bulk_retry_is_one_update(self, admin_client, big_table, django_assert_num_queries):
        with django_assert_num_queries(AUTH_QUERIES + 1):
            admin_client.post(reverse("jobs:retry_failed"), {"queue": "emails"})
        assert not Job.objects.filter(status="failed", queue="emails").exists()


class TestPagination:
    def _walk(self, client, status, **filters):
        """Follow "next page" links from the first page; every row seen, in order."""
        seen, url, params = [], reverse("jobs:list", args=[status]), filters
        while url:
            response = client.get(url, params)
            body = response.content.decode()
            seen.extend(job.pk for job in response.context["page"].jobs)
            url, params = response.context["next_url"], None
            assert ('rel="next"' in body) == bool(url)
        return seen

    def test_ready_jobs_in_claim_order(self, admin_client):
        now = timezone.now()
        for i in range(120):
            make_job("ready", priority=i % 4, run_at=now - timedelta(seconds=i % 7))
        expected = list(Job.objects.due(now).values_list("pk", flat=True))
        assert self._walk(admin_client, "ready") == expected

    @pytest.mark.parametrize(
        ("status", "column"), [("failed", "failed_at"), ("succeeded", "finished_at")]
    )
    def test_finished_jobs_newest_first(self, admin_client, status, column):
        now = timezone.now()
        for i in range(110):
            # Ties on the time, and a few without one, must neither repeat nor vanish.
            make_job(status, **{column: None if i % 25 == 0 else now - timedelta(seconds=i // 3)})
        seen = self._walk(admin_client, status)
        assert sorted(seen) == sorted(
            Job.objects.filter(status=status).values_list("pk", flat=True)
        )
        assert len(seen) == len(set(seen)) == 110
        times = list(Job.objects.in_bulk(seen).values())
        by_page = [getattr(job, column) for job in sorted(times, key=lambda j: seen.index(j.pk))]
        stamped = [t for t in by_page if t is not None]
        assert stamped == sorted(stamped, reverse=True)

    def test_running_jobs(self, admin_client):
        jobs = [make_job("running") for _ in range(55)]
        assert self._walk(admin_client, "running") == [job.pk for job in jobs]

    def test_filters_carry_over_to_the_next_page(self, admin_client):
        wanted = [make_job("failed", queue="emails") for _ in range(60)]
        make_job("failed", queue="default")
        assert sorted(self._walk(admin_client, "failed", queue="emails")) == [j.pk for j in wanted]

    def test_last_page_has_no_next_link(self, admin_client):
        make_job("failed")
        response = admin_client.get(reverse("jobs:list", args=["failed"]))
        assert response.context["next_url"] is None
        assert "Next page" not in response.content.decode()


FROZEN = datetime(2026, 11, 29, 12, 30, 30, tzinfo=UTC)


class TestOverviewNumbers:
    @pytest.fixture(autouse=True)
    def _frozen(self, time_machine):
        time_machine.move_to(FROZEN, tick=False)

    def test_jobs_per_minute_over_the_last_hour(self):
        def finished(status, at, queue="default"):
            make_job(status, queue=queue, now=at)

        finished("succeeded", FROZEN - timedelta(seconds=20))  # this minute: the last bar
        finished("succeeded", FROZEN - timedelta(seconds=25), queue="emails")
        finished("failed", FROZEN - timedelta(seconds=25))
        finished("succeeded", datetime(2026, 11, 29, 11, 31, 0, tzinfo=UTC))  # first bar
        finished("succeeded", datetime(2026, 11, 29, 11, 30, 59, tzinfo=UTC))  # too old
        overview = queries.overview()
        total = overview.total
        assert total.succeeded_per_minute[-1] == 2
        assert total.failed_per_minute[-1] == 1
        assert total.succeeded_per_minute[0] == 1
        assert (total.finished_last_hour, total.failed_last_hour) == (4, 1)
        default = next(q for q in overview.queues if q.name == "default")
        assert (default.finished_last_hour, default.failed_last_hour) == (3, 1)

        chart = total.chart
        assert chart.peak == 3 and chart.total == 4
        last = chart.bars[-1]
        assert last.label == "12:30: 2 succeeded, 1 failed"
        assert last.failed_y + last.failed_height == chart.height
        assert last.succeeded_y + last.succeeded_height == pytest.approx(last.failed_y)

    def test_latency_is_the_oldest_due_jobs_wait(self):
        make_job("ready", queue="emails", run_at=FROZEN - timedelta(minutes=3))
        make_job("ready", queue="emails", run_at=FROZEN - timedelta(seconds=4))
        make_job("ready", queue="emails", run_at=FROZEN + timedelta(hours=1))  # not due yet
        [emails] = queries.overview().queues
        assert emails.latency == timedelta(minutes=3)
        assert (emails.due, emails.scheduled, emails.latency_display) == (2, 1, "3 min")

    def test_no_due_jobs_no_latency(self):
        make_job("succeeded")
        [queue] = queries.overview().queues
        assert (queue.latency, queue.latency_display) == (None, "-")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.42, "0.4 s"), (12, "12 s"), (200, "3 min"), (3600, "1 h"), (3 * 86400 + 7200, "3 d 2 h")],
)
def test_durations(seconds, text):
    assert queries.duration(timedelta(seconds=seconds)) == text
