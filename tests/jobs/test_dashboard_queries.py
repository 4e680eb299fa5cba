"""The dashboard on a big table: a fixed number of queries, keyset pages, no COUNT.

The overview's queries go through partial indexes and read a bounded number
of rows however much history the table holds (EXPLAINed on both databases).
"""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs.dashboard import queries
from jobs.models import Job, PausedQueue, Worker
from tests.jobs.bigtable import add_history_and_future
from tests.jobs.jobrows import make_job, make_many

pytestmark = pytest.mark.django_db

# Session and user lookups that every logged-in request makes.
AUTH_QUERIES = 2


@pytest.fixture
def big_table():
    """60 jobs of every status over three queues, and some workers."""
    jobs = make_many(60 * len(Job.Status.values))
    for n in range(5):
        Worker.objects.create(name=f"host:{n}:abc", hostname="host", pid=n)
    PausedQueue.objects.create(queue="reports")
    return jobs


def _sql(captured):
    return [q["sql"].upper() for q in captured.captured_queries]


class TestQueryCounts:
    def test_overview(self, admin_client, big_table, django_assert_max_num_queries):
        with django_assert_max_num_queries(AUTH_QUERIES + 5) as captured:
            response = admin_client.get(reverse("jobs:overview"))
        assert len(response.context["overview"].queues) == 3
        # No count over the whole table: live rows, capped history, the last hour.
        jobs_queries = [sql for sql in _sql(captured) if "JOBS_JOB" in sql]
        assert len(jobs_queries) == 3
        assert all(
            "LIMIT" in sql or "FINISHED_AT" in sql or "FAILED_AT" in sql for sql in jobs_queries
        )

    def test_stats_json(self, admin_client, big_table, django_assert_max_num_queries):
        with django_assert_max_num_queries(AUTH_QUERIES + 5):
            admin_client.get(reverse("jobs:stats"))

    @pytest.mark.parametrize("status", Job.Status.values)
    def test_lists_use_two_queries_and_never_count(
        self, admin_client, big_table, status, django_assert_max_num_queries
    ):
        """The page of jobs, and the filters' choices (bounded like the overview's counts);
        the live refresh only the page."""
        url = reverse("jobs:list", args=[status])
        with django_assert_max_num_queries(AUTH_QUERIES + 2) as captured:
            response = admin_client.get(url)
        assert len(response.context["page"].jobs) == queries.PAGE_SIZE
        page_query, choices_query = [sql for sql in _sql(captured) if "JOBS_JOB" in sql]
        assert "COUNT(" not in page_query
        assert f"LIMIT {queries.PAGE_SIZE + 1}" in page_query
        # The big JSON columns stay in the database, but for the arguments' first characters.
        assert f"{queries.PREVIEW_CHARS}" in page_query
        assert '"ERRORS"' not in page_query and '"RESULT"' not in page_query
        assert choices_query.count("LIMIT") == len(Job.Status.values)
        assert "COUNT(" not in choices_query

        next_url = response.context["next_url"]
        with django_assert_max_num_queries(AUTH_QUERIES + 2):
            admin_client.get(next_url)
        with django_assert_max_num_queries(AUTH_QUERIES + 1):
            admin_client.get(next_url, {"partial": "1"})

    def test_task_page(self, admin_client, big_table, django_assert_max_num_queries):
        """Live counts, two sample edges and the sample: however many jobs the task has."""
        name = make_job().name
        with django_assert_max_num_queries(AUTH_QUERIES + 4) as captured:
            response = admin_client.get(reverse("jobs:task"), {"name": name})
        assert response.context["task"].finished > 0
        assert all("LIMIT" in sql for sql in _sql(captured) if "JOBS_JOB" in sql)
        with django_assert_max_num_queries(AUTH_QUERIES + 1):
            admin_client.get(reverse("jobs:task"))

    def test_workers(self, admin_client, big_table, django_assert_max_num_queries):
        # The running jobs, the workers, and what they finished (bounded).
        with django_assert_max_num_queries(AUTH_QUERIES + 3):
            response = admin_client.get(reverse("jobs:workers"))
        assert len(response.context["workers"].workers) == 5

    def test_job_page(self, admin_client, big_table, django_assert_max_num_queries):
        job = Job.objects.filter(status="failed").first()
        # The job, and the actions taken on it (LogEntry with their users).
        with django_assert_max_num_queries(AUTH_QUERIES + 2):
            admin_client.get(reverse("jobs:job", args=[job.pk]))

    def test_bulk_retry_costs_the_same_for_any_number_of_jobs(self, admin_client, big_table):
        """Per batch: lock the jobs, log them (one INSERT), the update with its queues and
        NOTIFY; never a query per job."""

        def cost(queue):
            with CaptureQueriesContext(connection) as captured:
                admin_client.post(
                    reverse("jobs:bulk", args=["failed"]),
                    {"queue": queue, "action": "retry", "scope": "all"},
                )
            return len(captured)

        # LogEntry's content type, once per process (ContentType's cache).
        ContentType.objects.get_for_model(Job)
        make_job("failed", queue="rare")
        one = cost("rare")
        assert Job.objects.filter(status="failed", queue="emails").count() > 2
        assert cost("emails") == one
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

    def test_the_chart_has_a_scale_and_a_time_axis(self, admin_client):
        make_job("succeeded", now=FROZEN - timedelta(seconds=5))
        for _ in range(2):
            make_job("failed", now=FROZEN - timedelta(minutes=30))
        chart = queries.overview().total.chart
        assert (chart.peak, chart.scale_max, chart.scale_mid) == (2, 2, "1")
        assert chart.start == datetime(2026, 11, 29, 11, 31, tzinfo=UTC)
        assert chart.end == datetime(2026, 11, 29, 12, 30, tzinfo=UTC)
        tallest = max(chart.bars, key=lambda bar: bar.failed_height)
        assert tallest.failed_height == chart.height  # the peak reaches the scale's top
        body = admin_client.get(reverse("jobs:overview")).content.decode()
        assert '<div class="jd-chart-y" aria-hidden="true"><span>2</span><span>1</span>' in body
        assert "data-clock>11:31 UTC</time>" in body and "<span>now</span>" in body

    def test_a_new_install_has_a_scale_and_says_why_the_chart_is_empty(self, admin_client):
        chart = queries.overview().total.chart
        assert (chart.peak, chart.scale_max) == (0, 1)
        body = admin_client.get(reverse("jobs:overview")).content.decode()
        assert "No job finished in the last hour" in body

    @pytest.mark.parametrize(
        ("peak", "top"), [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (240, 500)]
    )
    def test_nice_scale(self, peak, top):
        assert queries.BarChart.nice_ceiling(peak) == top

    def test_times_read_as_on_the_site(self, admin_client):
        job = make_job("failed", now=FROZEN)
        body = admin_client.get(reverse("jobs:job", args=[job.pk])).content.decode()
        # The server's UTC, which the page's script repaints in local time with its zone.
        assert (
            '<time datetime="2026-11-29T12:30:30+00:00" data-time>Nov 29, 12:30:30 UTC</time>'
            in body
        )

    def test_latency_is_the_oldest_due_jobs_wait(self):
        make_job("ready", queue="emails", run_at=FROZEN - timedelta(minutes=3))
        make_job("ready", queue="emails", run_at=FROZEN - timedelta(seconds=4))
        make_job("scheduled", queue="emails", run_at=FROZEN + timedelta(hours=1))  # not due yet
        [emails] = queries.overview().queues
        assert emails.latency == timedelta(minutes=3)
        assert (emails.due, emails.scheduled, emails.latency_display) == (2, 1, "3 min")

    def test_no_due_jobs_no_latency(self):
        make_job("succeeded")
        [queue] = queries.overview().queues
        assert (queue.latency, queue.latency_display) == (None, "-")


class TestOverviewCaps:
    @pytest.fixture
    def cap_of_three(self, monkeypatch):
        monkeypatch.setattr(queries, "COUNT_CAP", 3)

    def test_below_the_cap_every_count_is_exact(self, cap_of_three):
        for queue in ("emails", "emails", "reports"):
            make_job("failed", queue=queue)
        make_job("succeeded", queue="emails")
        overview = queries.overview()
        emails, reports = overview.queues
        assert (emails.failed_display, reports.failed_display) == ("2", "1")
        assert (overview.total.failed_display, overview.total.succeeded_display) == ("3", "1")
        assert overview.failed_estimate == ""

    def test_at_the_cap_counts_are_lower_bounds(self, cap_of_three):
        now = timezone.now()
        for minutes in range(5):
            make_job("failed", queue="emails", now=now - timedelta(minutes=minutes))
        make_job("failed", queue="reports", now=now - timedelta(days=2))  # past the newest four
        for hours in range(1, 6):
            make_job("scheduled", queue="reports", run_at=now + timedelta(hours=hours))
        overview = queries.overview()
        emails, reports = overview.queues
        assert overview.total.capped == {"failed", "scheduled"}
        assert (overview.total.failed_display, overview.total.scheduled_display) == ("3+", "3+")
        assert (emails.failed_display, reports.failed_display) == ("4+", "0+")
        assert reports.scheduled_display == "4+"
        assert overview.total.succeeded_display == "0"
        assert emails.as_json()["capped"] == ["failed", "scheduled"]

    def test_the_page_says_which_counts_are_capped(self, admin_client, cap_of_three):
        for _ in range(4):
            make_job("failed", queue="emails")
        body = admin_client.get(reverse("jobs:overview")).content.decode()
        assert '<span class="jd-tile-n">3+</span> failed' in body
        assert "count at most 3 jobs each" in body


class TestOverviewPlans:
    """Every overview query on a table that is mostly history reads an index, boundedly."""

    PARTIAL_INDEXES = {
        "jobs_job_ready_idx",
        "jobs_job_ready_run_at_idx",
        "jobs_job_scheduled_idx",
        "jobs_job_running_idx",
        "jobs_job_succeeded_idx",
        "jobs_job_failed_idx",
        "jobs_job_blocked_idx",
        "jobs_job_cancelled_idx",
    }

    @pytest.fixture
    def history(self):
        now = timezone.now()
        add_history_and_future(20_000, 5_000, now=now)
        make_job("ready", run_at=now - timedelta(minutes=1))
        make_job("running", queue="emails")
        make_job("succeeded", queue="emails")
        make_job("failed", queue="emails")

    @pytest.fixture
    def overview_selects(self, admin_client, history):
        """The SQL of each SELECT on jobs_job that rendering the overview ran."""
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(reverse("jobs:overview"))
        assert response.status_code == 200
        selects = [
            q["sql"]
            for q in captured.captured_queries
            if "jobs_job" in q["sql"] and q["sql"].lstrip().upper().startswith("SELECT")
        ]
        assert len(selects) == 3
        return selects, response.content.decode()

    @staticmethod
    def _pg_nodes(plan):
        yield plan
        for child in plan.get("Plans", ()):
            yield from TestOverviewPlans._pg_nodes(child)

    @classmethod
    def assert_reads_partial_indexes(cls, sql, params=None):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("EXPLAIN " + sql, params)
                plan = "\n".join(row[0] for row in cursor.fetchall())
                assert "Seq Scan on jobs_job" not in plan, plan
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
                details = [row[3] for row in cursor.fetchall()]
                plan = "\n".join(details)
                assert "SCAN jobs_job" not in details, plan
                on_jobs = [d for d in details if d.split()[1:2] == ["jobs_job"]]
                assert on_jobs, plan
                assert all("USING INDEX" in d or "USING COVERING INDEX" in d for d in on_jobs)
        used = set(re.findall(r"jobs_job_\w+_idx", plan))
        assert used and used <= cls.PARTIAL_INDEXES, plan

    def test_no_query_scans_the_table(self, overview_selects):
        selects, _ = overview_selects
        for sql in selects:
            self.assert_reads_partial_indexes(sql)

    def test_the_workers_page_reads_partial_indexes(self, admin_client, history):
        Worker.objects.create(name="host:1:abc", hostname="host", pid=1)
        with CaptureQueriesContext(connection) as captured:
            admin_client.get(reverse("jobs:workers"))
        selects = [q["sql"] for q in captured.captured_queries if "jobs_job" in q["sql"]]
        assert len(selects) == 2
        for sql in selects:
            self.assert_reads_partial_indexes(sql)

    def test_the_task_page_reads_partial_indexes(self, admin_client, history):
        make_job("failed", name="history")  # the fixture's history is a day old
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(reverse("jobs:task"), {"name": "history"})
        assert response.context["task"].failed > 0
        selects = [q["sql"] for q in captured.captured_queries if "jobs_job" in q["sql"]]
        assert len(selects) == 4
        for sql in selects:
            self.assert_reads_partial_indexes(sql)

    @pytest.mark.parametrize("status", Job.Status.values)
    def test_list_pages_and_their_filters_read_partial_indexes(self, admin_client, history, status):
        with CaptureQueriesContext(connection) as captured:
            admin_client.get(reverse("jobs:list", args=[status]), {"range": "1h"})
        selects = [q["sql"] for q in captured.captured_queries if "jobs_job" in q["sql"]]
        assert len(selects) == 2
        for sql in selects:
            self.assert_reads_partial_indexes(sql)

    def test_each_query_reads_few_rows(self, overview_selects):
        """Run, each read of jobs_job stops at COUNT_CAP + 1 rows: 25,000 are there."""
        if connection.vendor != "postgresql":
            pytest.skip("only PostgreSQL's EXPLAIN ANALYZE counts the rows read")
        selects, _ = overview_selects
        for sql in selects:
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
                [[explained]] = cursor.fetchall()
            if isinstance(explained, str):
                explained = json.loads(explained)
            plan = explained[0]["Plan"]
            for node in self._pg_nodes(plan):
                if node.get("Relation Name") == "jobs_job" or node.get("Index Name"):
                    assert node["Actual Rows"] <= queries.COUNT_CAP + 1, json.dumps(plan)

    def test_capped_counts_are_shown_as_such(self, overview_selects):
        _, body = overview_selects
        assert f'<span class="jd-tile-n">{queries.COUNT_CAP}+</span> failed' in body
        assert f'<span class="jd-tile-n">{queries.COUNT_CAP}+</span> succeeded' in body
        if connection.vendor == "postgresql":
            # ANALYZE sampled the table: the planner's estimate, for scale.
            assert re.search(r"\(≈ [\d,]+ in all\)", body)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.42, "0.4 s"), (12, "12 s"), (200, "3 min"), (3600, "1 h"), (3 * 86400 + 7200, "3 d 2 h")],
)
def test_durations(seconds, text):
    assert queries.duration(timedelta(seconds=seconds)) == text
