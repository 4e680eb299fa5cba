"""Blocked and cancelled jobs on the dashboard, and its Cancel action (row, bulk, job page)."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse
from django.utils import timezone

from jobs.dashboard import queries
from jobs.models import Job
from tests.jobs.jobrows import make_job
from tests.jobs.test_dashboard import _messages, staff_user

pytestmark = pytest.mark.django_db

YES = {"confirmed": "1"}


@pytest.fixture
def operator(client, django_user_model):
    """Staff who may change jobs (cancel, retry) but not delete them."""
    client.force_login(staff_user(django_user_model, "operator", "view_job", "change_job"))
    return client


@pytest.fixture
def viewer(client, django_user_model):
    client.force_login(staff_user(django_user_model, "viewer", "view_job"))
    return client


class TestCancelOneJob:
    @pytest.mark.parametrize("status", ["ready", "scheduled", "blocked"])
    def test_a_waiting_job_is_cancelled_and_logged(self, operator, status):
        job = make_job(status, run_at=timezone.now() + timedelta(hours=1))
        response = operator.post(reverse("jobs:cancel", args=[job.pk]), YES)
        assert response["Location"] == reverse("jobs:job", args=[job.pk])
        assert _messages(response) == [f"Job {job.pk} was cancelled: it will not run."]
        job.refresh_from_db()
        assert (job.status, job.finished_at is not None) == ("cancelled", True)
        [entry] = LogEntry.objects.all()
        assert (entry.user.username, entry.action_flag) == ("operator", CHANGE)
        assert entry.change_message == "Cancelled from the jobs dashboard: it will not run."

    def test_a_running_job_is_asked_to_stop_once(self, operator):
        job = make_job("running")
        response = operator.post(reverse("jobs:cancel", args=[job.pk]), YES)
        assert "was asked to stop" in _messages(response)[0]
        job.refresh_from_db()
        assert job.status == "running" and job.cancel_requested_at is not None
        [entry] = LogEntry.objects.all()
        assert entry.change_message.startswith("Cancellation requested from the jobs dashboard")

        again = operator.post(reverse("jobs:cancel", args=[job.pk]), YES)
        [message] = [m for m in _messages(again) if "not cancelled" in m]
        assert "already asked to stop" in message
        assert LogEntry.objects.count() == 1

    @pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
    def test_a_finished_job_is_left_alone(self, operator, status):
        job = make_job(status)
        before = Job.objects.values().get(pk=job.pk)
        response = operator.post(reverse("jobs:cancel", args=[job.pk]), YES)
        assert f"it is {status}" in _messages(response)[0]
        assert Job.objects.values().get(pk=job.pk) == before
        assert not LogEntry.objects.exists()

    def test_view_only_staff_see_no_cancel_and_get_403(self, viewer):
        job = make_job("ready")
        body = viewer.get(reverse("jobs:job", args=[job.pk])).content.decode()
        assert reverse("jobs:cancel", args=[job.pk]) not in body
        assert "You may look at jobs, not act on them." in body
        list_body = viewer.get(reverse("jobs:list", args=["ready"])).content.decode()
        assert reverse("jobs:cancel", args=[job.pk]) not in list_body
        assert 'value="cancel"' not in list_body
        assert viewer.post(reverse("jobs:cancel", args=[job.pk]), YES).status_code == 403
        bulk = viewer.post(
            reverse("jobs:bulk", args=["ready"]), {"action": "cancel", "scope": "all", **YES}
        )
        assert bulk.status_code == 403
        assert Job.objects.get(pk=job.pk).status == "ready"

    def test_deleting_is_not_needed_to_cancel(self, operator):
        job = make_job("ready")
        body = operator.get(reverse("jobs:list", args=["ready"])).content.decode()
        assert reverse("jobs:cancel", args=[job.pk]) in body
        assert reverse("jobs:discard", args=[job.pk]) not in body


class TestBulkCancel:
    def test_ticked_waiting_jobs(self, operator):
        ticked = [make_job("blocked") for _ in range(2)]
        kept = make_job("blocked")
        response = operator.post(
            reverse("jobs:bulk", args=["blocked"]),
            {"action": "cancel", "ids": [j.pk for j in ticked], **YES},
        )
        assert _messages(response) == ["2 blocked jobs: cancelled; they will not run."]
        assert set(Job.objects.filter(status="cancelled").values_list("pk", flat=True)) == {
            j.pk for j in ticked
        }
        assert Job.objects.get(pk=kept.pk).status == "blocked"
        assert LogEntry.objects.count() == 2

    def test_every_running_job_matching(self, operator):
        emails = [make_job("running", queue="emails") for _ in range(2)]
        other = make_job("running", queue="default")
        response = operator.post(
            reverse("jobs:bulk", args=["running"]),
            {"action": "cancel", "scope": "all", "queue": "emails", **YES},
        )
        assert _messages(response)[0].startswith("2 running jobs: asked to stop")
        asked = Job.objects.filter(cancel_requested_at__isnull=False)
        assert set(asked.values_list("pk", flat=True)) == {j.pk for j in emails}
        assert Job.objects.get(pk=other.pk).cancel_requested_at is None

    def test_cancelled_jobs_can_be_retried_in_bulk(self, operator):
        job = make_job("cancelled")
        operator.post(
            reverse("jobs:bulk", args=["cancelled"]), {"action": "retry", "ids": [job.pk]}
        )
        job.refresh_from_db()
        assert (job.status, job.finished_at) == ("ready", None)

    @pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
    def test_finished_lists_offer_no_cancel(self, operator, status):
        job = make_job(status)
        response = operator.post(
            reverse("jobs:bulk", args=[status]), {"action": "cancel", "ids": [job.pk], **YES}
        )
        assert response.status_code == 400
        body = operator.get(reverse("jobs:list", args=[status])).content.decode()
        assert 'value="cancel"' not in body


class TestNewStatusesOnThePages:
    def test_overview_counts_blocked_and_cancelled(self, operator):
        make_job("blocked", queue="emails")
        make_job("cancelled", queue="emails")
        make_job("cancelled", queue="emails")
        overview = queries.overview()
        [emails] = overview.queues
        assert (emails.blocked, emails.cancelled) == (1, 2)
        body = operator.get(reverse("jobs:overview")).content.decode()
        assert '<span class="jd-tile-n">1</span> blocked' in body
        assert '<span class="jd-tile-n">2</span> cancelled' in body
        assert f'href="{reverse("jobs:list", args=["cancelled"])}?queue=emails">2</a>' in body

    def test_overview_caps_them_like_other_history(self, monkeypatch):
        monkeypatch.setattr(queries, "COUNT_CAP", 2)
        for _ in range(3):
            make_job("cancelled")
            make_job("blocked")
        total = queries.overview().total
        assert (total.cancelled_display, total.blocked_display) == ("2+", "2+")

    def test_the_tabs_name_every_status(self, operator):
        body = operator.get(reverse("jobs:overview")).content.decode()
        for status in ("blocked", "cancelled"):
            assert f'<a href="{reverse("jobs:list", args=[status])}">' in body

    def test_a_blocked_list_shows_the_key_and_limit(self, operator):
        make_job("blocked", concurrency_key="smtp", concurrency_limit=3)
        body = operator.get(reverse("jobs:list", args=["blocked"])).content.decode()
        assert '<code class="jd-label">smtp</code>' in body
        assert "(at most 3 at a time)" in body

    def test_a_cancelled_list_filters_by_when_it_was_cancelled(self, operator):
        now = timezone.now()
        recent = make_job("cancelled", finished_at=now - timedelta(minutes=2))
        make_job("cancelled", finished_at=now - timedelta(hours=3))
        response = operator.get(reverse("jobs:list", args=["cancelled"]), {"range": "1h"})
        assert [j.pk for j in response.context["page"].jobs] == [recent.pk]
        assert '<option value="1h" selected>Cancelled in the last hour</option>' in (
            response.content.decode()
        )

    def test_the_task_page_counts_blocked_and_cancelled(self, operator):
        name = "signupdemo.mailers.confirm"
        make_job("blocked", name=name)
        make_job("cancelled", name=name)
        make_job("cancelled", name=name, finished_at=timezone.now() - timedelta(days=2))
        make_job("cancelled", name="another")
        task = queries.task_stats(name)
        assert (task.blocked, task.cancelled) == (1, 1)
        body = operator.get(reverse("jobs:task"), {"name": name}).content.decode()
        assert '<span class="jd-tile-n">1</span> blocked' in body
        assert '<span class="jd-tile-n">1</span> cancelled' in body

    def test_the_job_page_shows_keys_and_a_pending_cancellation(self, operator):
        asked = timezone.now() - timedelta(seconds=3)
        job = make_job(
            "running",
            unique_key="digest:7",
            concurrency_key="smtp",
            concurrency_limit=2,
            cancel_requested_at=asked,
        )
        body = operator.get(reverse("jobs:job", args=[job.pk])).content.decode()
        assert '<code class="jd-label">digest:7</code>' in body
        assert '<code class="jd-label">smtp</code>' in body
        assert "(at most 2 running at a time)" in body
        assert "Cancellation requested" in body and asked.isoformat() in body
        # Asked once already: no second button.
        assert reverse("jobs:cancel", args=[job.pk]) not in body

    def test_a_cancelled_job_offers_retry(self, operator):
        job = make_job("cancelled")
        body = operator.get(reverse("jobs:job", args=[job.pk])).content.decode()
        assert f'action="{reverse("jobs:retry", args=[job.pk])}"' in body
        assert reverse("jobs:cancel", args=[job.pk]) not in body
        list_body = operator.get(reverse("jobs:list", args=["cancelled"])).content.decode()
        assert f'action="{reverse("jobs:retry", args=[job.pk])}"' in list_body
        operator.post(reverse("jobs:retry", args=[job.pk]))
        assert Job.objects.get(pk=job.pk).status == "ready"

    def test_retrying_a_keyed_cancelled_job_waits_for_its_slot(self, operator):
        make_job("running", concurrency_key="smtp", concurrency_limit=1)
        job = make_job("cancelled", concurrency_key="smtp", concurrency_limit=1)
        operator.post(reverse("jobs:retry", args=[job.pk]))
        assert Job.objects.get(pk=job.pk).status == "blocked"


class TestRescheduleRespectsKeys:
    def test_a_keyed_job_made_due_waits_for_a_slot(self, operator):
        make_job("running", concurrency_key="smtp", concurrency_limit=1)
        job = make_job("failed", concurrency_key="smtp", concurrency_limit=1)
        operator.post(reverse("jobs:reschedule", args=[job.pk]), {"run_at": "2020-01-01T00:00"})
        assert Job.objects.get(pk=job.pk).status == "blocked"

    def test_a_failed_job_yields_its_unique_key_to_one_waiting(self, operator):
        make_job("ready", unique_key="digest:1")
        job = make_job("failed", unique_key="digest:1")
        operator.post(reverse("jobs:reschedule", args=[job.pk]), {"run_at": "2030-01-01T00:00"})
        job.refresh_from_db()
        assert (job.status, job.unique_key) == ("scheduled", None)
