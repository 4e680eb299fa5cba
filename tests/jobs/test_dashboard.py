"""The dashboard: who may see it, what each page shows, and what each action does."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs.claiming import claim_due_jobs
from jobs.dashboard import actions, arguments, queries
from jobs.models import Job, PausedQueue, Worker
from tests.jobs.jobrows import error_entry, make_job

pytestmark = pytest.mark.django_db

JOB = object()  # stands for the test job's pk in the URL tables below

PAGES = [
    ("jobs:overview", ()),
    ("jobs:stats", ()),
    ("jobs:workers", ()),
    *[("jobs:list", (status,)) for status in Job.Status.values],
    ("jobs:job", (JOB,)),
    ("jobs:task", ()),
]
#: What the action tests post: enough for every action (bulk ones act on
#: every failed job of the emails queue, the test job's).
#: ("confirmed": as the page's dialog answered yes; without it, destructive
#: actions ask on a page of their own: see test_dashboard_confirm.py.)
FORM = {
    "queue": "emails",
    "action": "retry",
    "scope": "all",
    "run_at": "2030-01-01T09:00",
    "confirmed": "1",
}
ACTIONS = [
    ("jobs:retry", (JOB,)),
    ("jobs:run_now", (JOB,)),
    ("jobs:discard", (JOB,)),
    ("jobs:cancel", (JOB,)),
    ("jobs:reschedule", (JOB,)),
    ("jobs:bulk", ("failed",)),
    ("jobs:pause", ()),
    ("jobs:resume", ()),
]


def _url(name, args, job):
    return reverse(name, args=[job.pk if arg is JOB else arg for arg in args])


def _ids(table):
    return [f"{name}{''.join(f'-{a}' for a in args if a is not JOB)}" for name, args in table]


@pytest.fixture
def job():
    return make_job("failed", queue="emails")


def staff_user(django_user_model, username, *codenames):
    """A staff member (not a superuser) with these jobs permissions."""
    user = django_user_model.objects.create_user(username, password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def staff(client, django_user_model):
    """A client logged in as staff who may see and act, without being a superuser."""
    client.force_login(
        staff_user(django_user_model, "staff", "view_job", "change_job", "delete_job")
    )
    return client


@pytest.fixture
def viewer(client, django_user_model):
    """Staff who may look at jobs and nothing more."""
    client.force_login(staff_user(django_user_model, "viewer", "view_job"))
    return client


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


# -- permissions ------------------------------------------------------------------


class TestPermissions:
    @pytest.mark.parametrize(("name", "args"), PAGES, ids=_ids(PAGES))
    def test_anonymous_pages_go_to_login(self, client, job, name, args):
        url = _url(name, args, job)
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(resolve_url(settings.LOGIN_URL) + "?next=")
        assert client.get(url, {"partial": "1"}).status_code == 302

    @pytest.mark.parametrize(("name", "args"), ACTIONS, ids=_ids(ACTIONS))
    def test_anonymous_actions_go_to_login_and_do_nothing(self, client, job, name, args):
        response = client.post(_url(name, args, job), FORM)
        assert response.status_code == 302
        # After logging in they land on the overview, not on a POST-only URL.
        assert response["Location"] == (
            f"{resolve_url(settings.LOGIN_URL)}?next={reverse('jobs:overview')}"
        )
        assert Job.objects.get(pk=job.pk).status == "failed"
        assert not PausedQueue.objects.exists()

    @pytest.mark.parametrize(("name", "args"), PAGES + ACTIONS, ids=_ids(PAGES + ACTIONS))
    def test_users_who_are_not_staff_are_forbidden(
        self, client, django_user_model, job, name, args
    ):
        client.force_login(django_user_model.objects.create_user("ada", password="x"))
        method = client.post if (name, args) in ACTIONS else client.get
        assert method(_url(name, args, job), FORM).status_code == 403
        assert Job.objects.get(pk=job.pk).status == "failed"
        assert not PausedQueue.objects.exists()

    @pytest.mark.parametrize(("name", "args"), PAGES, ids=_ids(PAGES))
    def test_staff_see_pages(self, staff, job, name, args):
        url = _url(name, args, job)
        assert staff.get(url).status_code == 200
        assert staff.get(url, {"partial": "1"}).status_code == 200

    @pytest.mark.parametrize(("name", "args"), ACTIONS, ids=_ids(ACTIONS))
    def test_staff_act_and_are_sent_back(self, staff, job, name, args):
        response = staff.post(_url(name, args, job), FORM)
        assert response.status_code == 302
        assert _messages(response)

    @pytest.mark.parametrize(("name", "args"), ACTIONS, ids=_ids(ACTIONS))
    def test_actions_are_post_only(self, staff, job, name, args):
        assert staff.get(_url(name, args, job), FORM).status_code == 405
        assert Job.objects.get(pk=job.pk).status == "failed"

    @pytest.mark.parametrize(("name", "args"), PAGES, ids=_ids(PAGES))
    def test_pages_do_not_take_posts(self, staff, job, name, args):
        assert staff.post(_url(name, args, job)).status_code == 405

    @pytest.mark.parametrize(("name", "args"), PAGES, ids=_ids(PAGES))
    def test_staff_without_view_job_are_forbidden(self, client, django_user_model, job, name, args):
        client.force_login(staff_user(django_user_model, "nobody"))
        assert client.get(_url(name, args, job)).status_code == 403

    @pytest.mark.parametrize(("name", "args"), ACTIONS, ids=_ids(ACTIONS))
    def test_view_only_staff_see_but_may_not_act(self, viewer, job, name, args):
        assert viewer.post(_url(name, args, job), FORM).status_code == 403
        assert Job.objects.get(pk=job.pk).status == "failed"
        assert not PausedQueue.objects.exists()
        assert not LogEntry.objects.exists()

    @pytest.mark.parametrize(("name", "args"), PAGES, ids=_ids(PAGES))
    def test_view_only_staff_get_no_action_buttons(self, viewer, job, name, args):
        make_job("scheduled", run_at=timezone.now() + timedelta(hours=1), queue="emails")
        body = viewer.get(_url(name, args, job)).content.decode()
        main = body.split('<main id="main"', 1)[-1]  # the header's log-out form aside
        assert 'class="jd-inline-form"' not in main
        assert 'method="post"' not in main

    def test_changing_and_deleting_are_separate_permissions(self, client, django_user_model):
        client.force_login(staff_user(django_user_model, "operator", "view_job", "change_job"))
        job = make_job("failed")
        assert client.post(reverse("jobs:discard", args=[job.pk])).status_code == 403
        assert client.post(reverse("jobs:retry", args=[job.pk])).status_code == 302
        body = client.get(reverse("jobs:job", args=[job.pk])).content.decode()
        assert reverse("jobs:discard", args=[job.pk]) not in body
        assert Job.objects.get(pk=job.pk).status == "ready"

    def test_superusers_may_do_everything(self, admin_client):
        job = make_job("failed")
        url = reverse("jobs:discard", args=[job.pk])
        assert admin_client.post(url, {"confirmed": "1"}).status_code == 302
        assert not Job.objects.filter(pk=job.pk).exists()

    def test_inactive_staff_are_forbidden(self, client, django_user_model):
        user = django_user_model.objects.create_user("old", password="x", is_staff=True)
        client.force_login(user)
        user.is_active = False
        user.save()
        # Django's default backend logs inactive users out: back to login.
        assert client.get(reverse("jobs:overview")).status_code == 302

    def test_actions_need_the_csrf_token(self, admin_user, job):
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(admin_user)
        url = reverse("jobs:retry", args=[job.pk])
        assert browser.post(url).status_code == 403
        assert Job.objects.get(pk=job.pk).status == "failed"

        page = browser.get(reverse("jobs:job", args=[job.pk]))
        token = page.context["csrf_token"]
        assert f'name="csrfmiddlewaretoken" value="{token}"' in page.content.decode()
        assert browser.post(url, {"csrfmiddlewaretoken": str(token)}).status_code == 302
        assert Job.objects.get(pk=job.pk).status == "ready"

    def test_a_way_back_to_the_site_and_to_log_out(self, staff):
        body = staff.get(reverse("jobs:overview")).content.decode()
        assert '<a href="/">← Back to the site</a>' in body
        assert f'<form method="post" action="{reverse("logout")}"' in body
        assert 'aria-label="Log out staff">Log out</button>' in body

    def test_responses_are_not_cached(self, staff):
        response = staff.get(reverse("jobs:overview"))
        assert "no-cache" in response["Cache-Control"]


# -- pages ------------------------------------------------------------------------


class TestOverview:
    def test_counts_latency_and_pause_state_per_queue(self, staff):
        now = timezone.now()
        make_job("ready", queue="emails", run_at=now - timedelta(minutes=5, seconds=10))
        make_job("scheduled", queue="emails", run_at=now + timedelta(hours=1))
        make_job("running", queue="emails")
        make_job("failed", queue="reports")
        make_job("succeeded", queue="reports")
        PausedQueue.objects.create(queue="reports")
        body = staff.get(reverse("jobs:overview")).content.decode()
        assert '<span class="jd-tile-n">5 min</span> oldest due job' in body
        assert '<span class="jd-badge jd-badge-paused">Paused</span>' in body
        assert 'aria-label="Resume queue reports"' in body
        assert 'aria-label="Pause queue emails"' in body
        assert '<svg class="jd-chart jd-chart-large"' in body
        assert "2 jobs finished in the last 60 minutes (1 failed)" in body

    def test_stats_json(self, staff):
        make_job("ready", queue="emails", run_at=timezone.now() - timedelta(seconds=30))
        make_job("failed", queue="emails")
        data = staff.get(reverse("jobs:stats")).json()
        [emails] = data["queues"]
        assert emails["queue"] == "emails"
        assert emails["counts"] == {
            "due": 1, "scheduled": 0, "blocked": 0, "running": 0, "succeeded": 0, "failed": 1,
            "cancelled": 0,
        }  # fmt: skip
        assert 30 <= emails["latency_seconds"] < 60
        assert (emails["failed_last_hour"], emails["paused"]) == (1, False)
        assert emails["capped"] == []  # every count is exact below the cap
        assert data["count_cap"] == queries.COUNT_CAP
        assert data["workers"] == {"live": 0, "stale": 0}

    def test_empty(self, staff):
        assert "No jobs yet" in staff.get(reverse("jobs:overview")).content.decode()

    def test_the_live_region_renders_alone(self, staff):
        make_job("failed", queue="emails")
        response = staff.get(reverse("jobs:overview"), {"partial": "1"})
        body = response.content.decode()
        assert "<html" not in body
        assert '<code class="jd-label">emails</code>' in body
        # Action forms in a fragment come back to the page, not to the fragment.
        assert 'name="next" value="/jobs/"' in body


class TestLists:
    def test_filters_by_queue_and_name(self, staff):
        wanted = make_job("failed", queue="emails", name="signupdemo.mailers.confirm")
        make_job("failed", queue="emails", name="signupdemo.tasks.reminder")
        make_job("failed", queue="default", name="signupdemo.mailers.confirm")
        response = staff.get(
            reverse("jobs:list", args=["failed"]), {"queue": "emails", "name": "MAILERS"}
        )
        assert [job.pk for job in response.context["page"].jobs] == [wanted.pk]

    def test_queues_and_names_to_choose_from_are_those_in_the_table(self, staff):
        make_job("failed", queue="emails", name="signupdemo.mailers.confirm")
        make_job("succeeded", queue="reports", name="signupdemo.tasks.report")
        response = staff.get(reverse("jobs:list", args=["failed"]))
        choices = response.context["choices"]
        assert choices.queues == ["emails", "reports"]
        assert choices.names == ["signupdemo.mailers.confirm", "signupdemo.tasks.report"]
        body = response.content.decode()
        assert '<option value="reports">reports</option>' in body
        assert '<option value="signupdemo.tasks.report">' in body

    @pytest.mark.parametrize(
        ("status", "column", "inside", "outside"),
        [
            ("failed", "failed_at", -timedelta(minutes=30), -timedelta(hours=2)),
            ("succeeded", "finished_at", -timedelta(minutes=3), -timedelta(minutes=10)),
            ("scheduled", "run_at", timedelta(hours=20), timedelta(days=2)),
            ("ready", "run_at", -timedelta(hours=2), -timedelta(minutes=1)),
            ("running", "locked_at", -timedelta(hours=2), -timedelta(minutes=1)),
        ],
    )
    def test_time_ranges(self, staff, status, column, inside, outside):
        now = timezone.now()
        wanted = make_job(status, **{column: now + inside})
        make_job(status, **{column: now + outside})
        ranges = {
            "failed": "1h",
            "succeeded": "5m",
            "scheduled": "1d",
            "ready": "1h",
            "running": "1h",
        }
        response = staff.get(reverse("jobs:list", args=[status]), {"range": ranges[status]})
        assert [job.pk for job in response.context["page"].jobs] == [wanted.pk]
        assert "Clear filters" in response.content.decode()

    def test_an_unknown_time_range_is_400(self, staff):
        assert staff.get(reverse("jobs:list", args=["failed"]), {"range": "1y"}).status_code == 400

    def test_rows_show_arguments_and_how_long_the_job_ran(self, staff):
        now = timezone.now()
        make_job(
            "succeeded",
            payload={"v": 1, "function": "m.f", "args": [1, "two"], "kwargs": {"user": {
                "__jobs__": "model", "app": "auth", "model": "user", "pk": 7}}},
            locked_at=now - timedelta(seconds=42),
            finished_at=now,
        )  # fmt: skip
        body = staff.get(reverse("jobs:list", args=["succeeded"])).content.decode()
        assert "<code>1, &#x27;two&#x27;, user=auth.user #7</code>" in body
        assert ">42 s</td>" in body

    def test_rows_link_to_the_job_and_offer_its_actions(self, staff):
        failed = make_job("failed")
        body = staff.get(reverse("jobs:list", args=["failed"])).content.decode()
        assert f'href="{reverse("jobs:job", args=[failed.pk])}"' in body
        assert f'action="{reverse("jobs:retry", args=[failed.pk])}"' in body
        assert f'action="{reverse("jobs:discard", args=[failed.pk])}"' in body
        assert "RuntimeError: boom" in body

    def test_running_jobs_offer_no_actions(self, staff):
        running = make_job("running")
        body = staff.get(reverse("jobs:list", args=["running"])).content.decode()
        assert "host:1:abc" in body
        assert reverse("jobs:discard", args=[running.pk]) not in body

    def test_unknown_status_is_404(self, staff):
        assert staff.get("/jobs/lost/").status_code == 404

    def test_a_bad_cursor_is_400(self, staff):
        url = reverse("jobs:list", args=["failed"])
        assert staff.get(url, {"after": "yesterday,1"}).status_code == 400
        assert staff.get(url, {"after": "2026-01-01T00:00:00,1"}).status_code == 400


class TestJobPage:
    def test_payload_errors_and_timestamps(self, staff):
        job = make_job("failed", payload={"kwargs": {"to": "ada@example.com"}})
        body = staff.get(reverse("jobs:job", args=[job.pk])).content.decode()
        assert "{\n  &quot;kwargs&quot;: {\n    &quot;to&quot;: &quot;ada@example.com&quot;" in body
        assert "Attempts (3 of 25)" in body
        assert body.count("Traceback (most recent call last):") == 3
        assert '<details class="jd-error-entry" id="attempt-3" open>' in body
        assert "Attempts</dt><dd>3 of 25 <span class=\"jd-muted\">(JOBS['MAX_ATTEMPTS'])" in body
        for action in ("jobs:retry", "jobs:discard"):
            assert f'action="{reverse(action, args=[job.pk])}"' in body
        assert reverse("jobs:run_now", args=[job.pk]) not in body

    def test_arguments_read_as_a_call(self, staff):
        job = make_job(
            "ready", payload={"v": 1, "function": "m.f", "args": ["ada"], "kwargs": {"n": 2}}
        )
        body = staff.get(reverse("jobs:job", args=[job.pk])).content.decode()
        assert "&#x27;ada&#x27;, n=2</pre>" in body
        assert "The payload, as stored (JSON)" in body

    def test_attempts_against_the_jobs_own_maximum(self, staff):
        job = make_job("failed", max_attempts=3)
        body = staff.get(reverse("jobs:job", args=[job.pk])).content.decode()
        assert "Attempts (3 of 3)" in body and "Attempts</dt><dd>3 of 3;" in body

    def test_every_attempt_with_its_run_time_worker_and_error(self, staff):
        now = timezone.now()
        errors = [
            {**error_entry(attempt=n, message=f"try {n}", at=now - timedelta(minutes=10 - n),
                           worker=f"w{n}"),
             "started_at": (now - timedelta(minutes=10 - n, seconds=7)).isoformat()}
            for n in (1, 2)
        ]  # fmt: skip
        job = make_job(
            "succeeded", attempts=3, errors=errors, error_count=2, locked_by="w3",
            locked_at=now - timedelta(seconds=30), finished_at=now,
        )  # fmt: skip
        response = staff.get(reverse("jobs:job", args=[job.pk]))
        found = response.context["attempts"]
        assert [(a.number, a.outcome, a.worker, a.duration_display) for a in found] == [
            (3, "succeeded", "w3", "30 s"),
            (2, "failed", "w2", "7.0 s"),
            (1, "failed", "w1", "7.0 s"),
        ]
        body = response.content.decode()
        assert "RuntimeError: try 2" in body and "<code>w2</code>" in body

    def test_errors_no_longer_kept_are_counted(self, staff):
        job = make_job("failed", error_count=14)
        body = staff.get(reverse("jobs:job", args=[job.pk])).content.decode()
        assert "11 earlier failed attempts not shown" in body

    def test_actions_say_what_they_do(self, staff):
        job = make_job("scheduled", attempts=2, run_at=timezone.now() + timedelta(hours=1))
        body = staff.get(reverse("jobs:job", args=[job.pk])).content.decode()
        assert "Due now, with its attempts counted from zero" in body
        assert "Due now instead of at its time; the 2 attempts so far still count." in body
        assert f'action="{reverse("jobs:reschedule", args=[job.pk])}"' in body

    def test_a_scheduled_job_can_run_now(self, staff):
        job = make_job("scheduled", run_at=timezone.now() + timedelta(hours=2))
        body = staff.get(reverse("jobs:job", args=[job.pk])).content.decode()
        assert f'action="{reverse("jobs:run_now", args=[job.pk])}"' in body
        assert "runs in 1" in body  # "1 hour, 59 minutes"

    def test_a_running_job_can_only_be_asked_to_stop(self, staff):
        job = make_job("running")
        body = staff.get(reverse("jobs:job", args=[job.pk])).content.decode()
        assert "its worker owns it until it finishes or is asked to stop" in body
        assert body.count('class="jd-inline-form"') == 1
        assert f'action="{reverse("jobs:cancel", args=[job.pk])}"' in body
        assert "Asks the running job to stop" in body

    def test_result_of_a_succeeded_job(self, staff):
        job = make_job("succeeded", result={"sent": 2})
        body = staff.get(reverse("jobs:job", args=[job.pk])).content.decode()
        assert "&quot;sent&quot;: 2" in body
        assert '<span class="jd-badge jd-badge-succeeded">succeeded</span>' in body

    def test_missing_job_is_404(self, staff):
        assert staff.get(reverse("jobs:job", args=[999999])).status_code == 404


class TestTaskPage:
    NAME = "signupdemo.mailers.confirm"

    def test_counts_rates_durations_and_throughput(self, staff):
        now = timezone.now()
        for seconds in (1, 2, 3, 4, 10, 20, 30, 40, 50, 100):  # ten successes
            make_job(
                "succeeded",
                name=self.NAME,
                locked_at=now - timedelta(hours=2, seconds=seconds),
                finished_at=now - timedelta(hours=2),
            )
        make_job("succeeded", name=self.NAME, locked_at=now - timedelta(seconds=5), finished_at=now)
        make_job("failed", name=self.NAME, locked_at=now - timedelta(minutes=1), failed_at=now)
        make_job("succeeded", name="other.task", finished_at=now)
        make_job("succeeded", name=self.NAME, finished_at=now - timedelta(days=2))  # too old
        make_job("ready", name=self.NAME)
        make_job("running", name=self.NAME)
        make_job("scheduled", name=self.NAME, run_at=now + timedelta(hours=1))
        response = staff.get(reverse("jobs:task"), {"name": self.NAME})
        task = response.context["task"]
        assert (task.ready, task.running, task.scheduled_display) == (1, 1, "1")
        assert (task.succeeded, task.failed, task.finished) == (11, 1, 12)
        assert (task.success_rate, task.failure_rate) == ("91.7 %", "8.3 %")
        assert (task.finished_last_hour, task.failed_last_hour) == (2, 1)
        assert (task.p50, task.p95) == ("10 s", "1 min")  # 10 s and 100 s
        assert not task.sampled
        body = response.content.decode()
        assert '<span class="jd-tile-n">91.7 %</span> success rate' in body
        assert f"?name={self.NAME}&amp;range=1d" in body

    def test_failures_grouped_by_error_class(self, staff):
        now = timezone.now()
        for minutes, error in ((1, "SMTPError: 421"), (2, "SMTPError: 450"), (3, "KeyError: 'x'")):
            make_job(
                "failed",
                name=self.NAME,
                last_error=error,
                failed_at=now - timedelta(minutes=minutes),
            )
        latest = Job.objects.get(last_error="SMTPError: 421")
        response = staff.get(reverse("jobs:task"), {"name": self.NAME})
        groups = response.context["task"].error_groups
        assert [(g.exception_class, g.count) for g in groups] == [("SMTPError", 2), ("KeyError", 1)]
        assert (groups[0].last_job_id, groups[0].last_message) == (latest.pk, "421")
        assert reverse("jobs:job", args=[latest.pk]) in response.content.decode()

    def test_the_sample_bounds_the_window(self, staff, monkeypatch):
        monkeypatch.setattr(queries, "TASK_SAMPLE", 3)
        now = timezone.now()
        for minutes in range(6):
            make_job("succeeded", name=self.NAME, finished_at=now - timedelta(minutes=minutes))
        task = staff.get(reverse("jobs:task"), {"name": self.NAME}).context["task"]
        assert task.sampled and task.succeeded == 3
        assert task.since == now - timedelta(minutes=2)

    def test_a_task_never_seen(self, staff):
        response = staff.get(reverse("jobs:task"), {"name": "no.such.task"})
        assert response.status_code == 200
        assert response.context["task"].finished == 0
        assert "No failures." in response.content.decode()

    def test_the_task_index_links_every_name_seen(self, staff):
        make_job("failed", name=self.NAME)
        body = staff.get(reverse("jobs:task")).content.decode()
        assert f'href="{reverse("jobs:task")}?name={self.NAME}"' in body

    def test_list_rows_and_the_job_page_link_to_the_task(self, staff):
        job = make_job("failed", name=self.NAME)
        link = f'href="{reverse("jobs:task")}?name={self.NAME}"'
        assert link in staff.get(reverse("jobs:list", args=["failed"])).content.decode()
        assert link in staff.get(reverse("jobs:job", args=[job.pk])).content.decode()


class TestWorkersPage:
    def test_live_and_stale_workers_with_their_jobs(self, staff, settings):
        settings.JOBS = {**settings.JOBS, "HEARTBEAT_TIMEOUT": 60}
        now = timezone.now()
        Worker.objects.create(
            name="web.1:7:aaa", hostname="web.1", pid=7, queues=["emails"], concurrency=4,
            last_heartbeat_at=now - timedelta(seconds=5),
        )  # fmt: skip
        Worker.objects.create(
            name="web.2:8:bbb",
            hostname="web.2",
            pid=8,
            kind=Worker.Kind.IN_WEB,
            last_heartbeat_at=now - timedelta(minutes=5),
        )
        mine = make_job("running", locked_by="web.1:7:aaa", name="signupdemo.mailers.confirm")
        for status in ("succeeded", "succeeded", "failed"):
            make_job(status, locked_by="web.1:7:aaa")
        make_job("succeeded", locked_by="web.2:8:bbb", finished_at=now - timedelta(days=2))
        orphan = make_job("running", locked_by="gone:9:ccc")
        response = staff.get(reverse("jobs:workers"))
        body = response.content.decode()
        live, stale = response.context["workers"].workers
        assert (live.stale, stale.stale) == (False, True)
        assert [job.pk for job in live.jobs] == [mine.pk]
        assert "1 of 4" in body and "signupdemo.mailers.confirm" in body
        assert (live.succeeded_display, live.failed_display) == ("2", "1")
        # Before the oldest worker started: not read.
        assert (stale.succeeded, stale.failed) == (0, 0)
        assert "Dedicated process: host <code>web.1</code>, process 7" in body
        assert "Inside the web process: host <code>web.2</code>, process 8" in body
        assert '<tr class="jd-row-stale">' in body
        assert "Running jobs without a worker" in body
        assert reverse("jobs:job", args=[orphan.pk]) in body

    def test_counts_cut_short_say_so(self, staff, monkeypatch):
        monkeypatch.setattr(queries, "WORKER_SAMPLE", 2)
        Worker.objects.create(name="w:1:a", hostname="w", pid=1)
        for _ in range(3):
            make_job("succeeded", locked_by="w:1:a")
        [row] = staff.get(reverse("jobs:workers")).context["workers"].workers
        assert (row.succeeded_display, row.failed_display) == ("3+", "0")

    def test_none(self, staff):
        assert "No workers are running" in staff.get(reverse("jobs:workers")).content.decode()


# -- actions ----------------------------------------------------------------------


class TestOneJobActions:
    def test_retry_a_failed_job(self, staff):
        job = make_job("failed")
        response = staff.post(reverse("jobs:retry", args=[job.pk]))
        assert response["Location"] == reverse("jobs:job", args=[job.pk])
        assert _messages(response) == [f"Job {job.pk} will run again now, with fresh attempts."]
        job.refresh_from_db()
        assert (job.status, job.attempts, job.failed_at) == ("ready", 0, None)

    def test_run_a_scheduled_job_now(self, staff):
        job = make_job("scheduled", run_at=timezone.now() + timedelta(days=1))
        staff.post(reverse("jobs:run_now", args=[job.pk]))
        job.refresh_from_db()
        assert job.status == "ready" and job.run_at <= timezone.now()

    def test_discard_goes_back_to_the_list(self, staff):
        job = make_job("failed")
        response = staff.post(reverse("jobs:discard", args=[job.pk]), {"confirmed": "1"})
        assert response["Location"] == reverse("jobs:list", args=["failed"])
        assert not Job.objects.filter(pk=job.pk).exists()

    @pytest.mark.parametrize("action", ["jobs:retry", "jobs:run_now", "jobs:discard"])
    def test_running_jobs_are_left_alone(self, staff, action):
        job = make_job("running")
        before = Job.objects.values().get(pk=job.pk)
        response = staff.post(reverse(action, args=[job.pk]))
        [message] = get_messages(response.wsgi_request)
        assert message.level_tag == "warning" and "running" in str(message)
        assert Job.objects.values().get(pk=job.pk) == before

    def test_a_job_already_gone(self, staff):
        response = staff.post(reverse("jobs:retry", args=[424242]))
        assert response["Location"] == reverse("jobs:overview")
        assert _messages(response) == ["Job 424242 no longer exists."]

    def test_back_to_next_but_only_on_this_site(self, staff):
        job = make_job("failed")
        here = reverse("jobs:list", args=["failed"]) + "?queue=default"
        response = staff.post(reverse("jobs:retry", args=[job.pk]), {"next": here})
        assert response["Location"] == here
        evil = staff.post(reverse("jobs:retry", args=[job.pk]), {"next": "https://evil.example/"})
        assert evil["Location"] == reverse("jobs:job", args=[job.pk])


class TestActionLog:
    """Every action is a LogEntry, as the admin writes them, shown on the job's page."""

    def test_a_retry_is_logged_and_shown(self, staff):
        job = make_job("failed")
        staff.post(reverse("jobs:retry", args=[job.pk]))
        [entry] = LogEntry.objects.all()
        assert (entry.user.username, entry.action_flag, entry.object_id) == (
            "staff", CHANGE, str(job.pk),
        )  # fmt: skip
        assert entry.get_edited_object() == Job.objects.get(pk=job.pk)
        assert "Retried from the jobs dashboard" in entry.change_message
        body = staff.get(reverse("jobs:job", args=[job.pk])).content.decode()
        assert "<strong>staff</strong> Retried from the jobs dashboard" in body

    def test_a_refused_action_logs_nothing(self, staff):
        job = make_job("running")
        staff.post(reverse("jobs:retry", args=[job.pk]))
        assert not LogEntry.objects.exists()
        body = staff.get(reverse("jobs:job", args=[job.pk])).content.decode()
        assert "Nobody has acted on this job." in body

    def test_discards_are_logged_as_deletions(self, staff):
        jobs = [make_job("failed") for _ in range(3)]
        staff.post(
            reverse("jobs:bulk", args=["failed"]),
            {"action": "discard", "scope": "all", "confirmed": "1"},
        )
        entries = LogEntry.objects.order_by("object_id")
        assert [e.object_id for e in entries] == [str(j.pk) for j in jobs]
        assert {e.action_flag for e in entries} == {DELETION}
        assert entries[0].object_repr == str(jobs[0])

    def test_pause_and_resume_are_logged_on_the_paused_queue(self, staff):
        staff.post(reverse("jobs:pause"), {"queue": "emails"})
        staff.post(reverse("jobs:resume"), {"queue": "emails"})
        entries = LogEntry.objects.order_by("pk")
        assert [(e.object_id, e.action_flag) for e in entries] == [
            ("emails", ADDITION), ("emails", DELETION),
        ]  # fmt: skip

    def test_bulk_actions_go_in_batches(self, staff, monkeypatch):
        monkeypatch.setattr(actions, "BATCH", 2)
        jobs = [make_job("failed") for _ in range(5)]
        running = make_job("running")
        staff.post(reverse("jobs:bulk", args=["failed"]), {"action": "retry", "scope": "all"})
        assert set(Job.objects.filter(status="ready").values_list("pk", flat=True)) == {
            j.pk for j in jobs
        }
        assert sorted(int(e.object_id) for e in LogEntry.objects.all()) == [j.pk for j in jobs]
        assert Job.objects.get(pk=running.pk).status == "running"


class TestReschedule:
    def _reschedule(self, client, job, **data):
        return client.post(reverse("jobs:reschedule", args=[job.pk]), data)

    def test_a_waiting_job_keeps_its_attempts(self, staff):
        job = make_job("ready", attempts=2)
        response = self._reschedule(staff, job, run_at_utc="2030-01-01T08:00:00.000Z")
        assert _messages(response) == [f"Job {job.pk} will run at 2030-01-01 08:00:00 UTC."]
        job.refresh_from_db()
        assert (job.status, job.attempts) == ("scheduled", 2)
        assert job.run_at == datetime(2030, 1, 1, 8, tzinfo=UTC)
        [entry] = LogEntry.objects.all()
        assert "Rescheduled from the jobs dashboard to 2030-01-01T08:00:00+00:00." in str(entry)

    def test_a_failed_job_starts_afresh_and_a_past_time_is_due_now(self, staff):
        job = make_job("failed")
        self._reschedule(staff, job, run_at="2020-01-01T00:00")  # no offset: UTC
        job.refresh_from_db()
        assert (job.status, job.attempts, job.failed_at) == ("ready", 0, None)
        assert job.run_at == datetime(2020, 1, 1, tzinfo=UTC)

    def test_a_typed_offset_is_kept(self, staff):
        job = make_job("scheduled", run_at=timezone.now())
        self._reschedule(staff, job, run_at="2030-01-01T10:00+02:00")
        assert Job.objects.get(pk=job.pk).run_at == datetime(2030, 1, 1, 8, tzinfo=UTC)

    @pytest.mark.parametrize("status", ["running", "succeeded"])
    def test_running_and_succeeded_jobs_are_left_alone(self, staff, status):
        job = make_job(status)
        before = Job.objects.values().get(pk=job.pk)
        response = self._reschedule(staff, job, run_at="2030-01-01T10:00")
        assert "was not rescheduled" in _messages(response)[0]
        assert Job.objects.values().get(pk=job.pk) == before

    def test_not_a_time_is_400(self, staff):
        job = make_job("ready")
        assert self._reschedule(staff, job, run_at="tomorrow").status_code == 400


class TestBulkActions:
    def _bulk(self, client, status, action, **data):
        data = {"action": action, "confirmed": "1", **data}
        return client.post(reverse("jobs:bulk", args=[status]), data)

    def test_retry_the_ticked_jobs(self, staff):
        ticked = [make_job("failed") for _ in range(2)]
        untouched = make_job("failed")
        response = self._bulk(staff, "failed", "retry", ids=[j.pk for j in ticked])
        assert _messages(response) == ["2 failed jobs: will run again now, with fresh attempts."]
        assert response["Location"] == reverse("jobs:list", args=["failed"])
        assert set(Job.objects.filter(status="ready").values_list("pk", flat=True)) == {
            j.pk for j in ticked
        }
        assert Job.objects.get(pk=untouched.pk).status == "failed"

    def test_a_ticked_job_that_moved_on_is_left_alone(self, staff):
        job = make_job("running")
        response = self._bulk(staff, "failed", "discard", ids=[job.pk])
        assert _messages(response) == ["0 failed jobs: discarded."]
        assert Job.objects.filter(pk=job.pk).exists()

    def test_a_request_changes_at_most_request_limit_jobs(self, staff, monkeypatch):
        monkeypatch.setattr(actions, "BATCH", 2)
        monkeypatch.setattr(actions, "REQUEST_LIMIT", 3)
        for _ in range(5):
            make_job("failed")
        response = self._bulk(staff, "failed", "discard", scope="all")
        [message] = _messages(response)
        assert message.startswith("3 failed jobs: discarded. It stopped there, 3 at a time")
        assert (Job.objects.count(), LogEntry.objects.count()) == (2, 3)
        response = self._bulk(staff, "failed", "discard", scope="all")
        assert _messages(response)[-1] == "2 failed jobs: discarded."
        assert not Job.objects.exists()

    def test_nothing_ticked(self, staff):
        response = self._bulk(staff, "failed", "retry")
        assert _messages(response) == ["No jobs were ticked: nothing was done."]

    def test_retry_every_failed_job_of_one_queue(self, staff):
        emails = [make_job("failed", queue="emails") for _ in range(3)]
        other = make_job("failed", queue="default")
        running = make_job("running", queue="emails")
        response = self._bulk(staff, "failed", "retry", scope="all", queue="emails")
        assert _messages(response) == ["3 failed jobs: will run again now, with fresh attempts."]
        assert set(Job.objects.filter(status="ready").values_list("pk", flat=True)) == {
            job.pk for job in emails
        }
        assert Job.objects.get(pk=other.pk).status == "failed"
        assert Job.objects.get(pk=running.pk).status == "running"

    def test_every_match_of_a_time_range(self, staff):
        now = timezone.now()
        recent = make_job("succeeded", finished_at=now - timedelta(minutes=2))
        old = make_job("succeeded", finished_at=now - timedelta(hours=3))
        self._bulk(staff, "succeeded", "discard", scope="all", range="1h")
        assert list(Job.objects.values_list("pk", flat=True)) == [old.pk]
        assert not Job.objects.filter(pk=recent.pk).exists()

    def test_run_scheduled_jobs_now(self, staff):
        job = make_job("scheduled", run_at=timezone.now() + timedelta(days=1))
        self._bulk(staff, "scheduled", "run_now", ids=[job.pk])
        assert Job.objects.get(pk=job.pk).status == "ready"

    @pytest.mark.parametrize(
        ("status", "action"), [("running", "discard"), ("failed", "run_now"), ("failed", "x")]
    )
    def test_actions_a_list_does_not_offer_are_400(self, staff, status, action):
        job = make_job(status)
        assert self._bulk(staff, status, action, ids=[job.pk]).status_code == 400
        assert Job.objects.get(pk=job.pk).status == status

    def test_discard_takes_delete_job(self, client, django_user_model):
        client.force_login(staff_user(django_user_model, "op", "view_job", "change_job"))
        job = make_job("failed")
        response = self._bulk(client, "failed", "discard", ids=[job.pk])
        assert response.status_code == 403
        assert Job.objects.filter(pk=job.pk).exists()
        body = client.get(reverse("jobs:list", args=["failed"])).content.decode()
        assert 'value="retry"' in body and 'value="discard"' not in body

    def test_the_list_offers_its_bulk_actions_and_confirms_discards(self, staff):
        job = make_job("failed", queue="emails")
        body = staff.get(reverse("jobs:list", args=["failed"]), {"queue": "emails"})
        body = body.content.decode()
        assert f'action="{reverse("jobs:bulk", args=["failed"])}"' in body
        assert '<input type="hidden" name="queue" value="emails">' in body
        assert f'name="ids" value="{job.pk}" form="bulk"' in body
        assert "data-select-page" in body
        # Bulk and row discards both ask first.
        assert 'value="discard" class="jd-btn jd-btn-danger" data-confirm=' in body
        assert body.count('data-confirm="Delete this job? This cannot be undone."') == 1

    def test_a_list_of_running_jobs_offers_only_asking_them_to_stop(self, staff):
        job = make_job("running")
        body = staff.get(reverse("jobs:list", args=["running"])).content.decode()
        assert f'name="ids" value="{job.pk}"' in body
        assert 'value="cancel"' in body
        assert 'value="discard"' not in body and 'value="retry"' not in body
        assert reverse("jobs:discard", args=[job.pk]) not in body


class TestPauseAndResume:
    def test_pause_stops_claiming_and_resume_restarts_it(self, staff):
        job = make_job("ready", queue="emails")
        response = staff.post(reverse("jobs:pause"), {"queue": "emails"})
        assert response["Location"] == reverse("jobs:overview")
        assert list(PausedQueue.objects.values_list("queue", flat=True)) == ["emails"]
        assert claim_due_jobs(worker_name="w", limit=10, now=timezone.now()) == []

        staff.post(reverse("jobs:resume"), {"queue": "emails"})
        assert not PausedQueue.objects.exists()
        claimed = claim_due_jobs(worker_name="w", limit=10, now=timezone.now())
        assert [j.pk for j in claimed] == [job.pk]

    def test_twice_is_harmless(self, staff):
        staff.post(reverse("jobs:pause"), {"queue": "emails"})
        again = staff.post(reverse("jobs:pause"), {"queue": "emails"})
        # (Messages pile up: nobody followed the redirects to read them.)
        assert _messages(again)[-1] == "Queue 'emails' was already paused."
        assert PausedQueue.objects.count() == 1
        staff.post(reverse("jobs:resume"), {"queue": "emails"})
        again = staff.post(reverse("jobs:resume"), {"queue": "emails"})
        assert _messages(again)[-1] == "Queue 'emails' was not paused."

    def test_a_queue_must_be_named(self, staff):
        assert staff.post(reverse("jobs:pause"), {"queue": " "}).status_code == 400
        assert staff.post(reverse("jobs:pause"), {"queue": "x" * 101}).status_code == 400
        assert not PausedQueue.objects.exists()

    def test_a_paused_queue_with_no_jobs_still_shows_on_the_overview(self, staff):
        PausedQueue.objects.create(queue="reports")
        data = json.loads(staff.get(reverse("jobs:stats")).content)
        assert [(q["queue"], q["paused"]) for q in data["queues"]] == [("reports", True)]


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        ({"v": 1, "function": "m.f", "args": [1, "a"], "kwargs": {"b": None}}, "1, 'a', b=None"),
        (
            {"v": 1, "job": {"__jobs__": "object", "class": "m.Job", "state": {"n": 2}}},
            "n=2",
        ),
        (
            {"v": 1, "args": [{"__jobs__": "tuple", "items": [1]}], "kwargs": {
                "at": {"__jobs__": "datetime", "value": "2026-12-04T10:00:00+00:00"}}},
            "(1,), at=2026-12-04T10:00:00+00:00",
        ),
        (
            {"v": 1, "receiver": {"__jobs__": "model", "app": "auth", "model": "user", "pk": 3},
             "method": "greet", "args": [], "kwargs": {}},
            "on auth.user #3",
        ),
    ],
)  # fmt: skip
def test_arguments_read_without_decoding(payload, text):
    assert arguments.arguments(payload) == text
    assert arguments.summary(json.dumps(payload)) == text


def test_a_cut_payload_is_shown_cut():
    assert arguments.summary('{"v": 1, "args": ["' + "x" * 500, limit=20) == '{"v": 1, "args": ["…'
