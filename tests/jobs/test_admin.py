"""The admin: jobs listed, searched and shown read-only; the three actions."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job, PausedQueue, Worker
from tests.jobs.jobrows import make_job

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:jobs_job_changelist"


def _act(client, action, jobs):
    return client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [job.pk for job in jobs]},
        follow=True,
    )


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


class TestList:
    def test_columns(self, admin_client):
        make_job("failed", queue="emails", priority=7, last_error="ValueError: no such user")
        body = admin_client.get(reverse(CHANGELIST)).content.decode()
        for text in ("emails", "Failed", "tests.testapp.jobs.noop", "ValueError: no such user"):
            assert text in body
        for column in ("status", "queue", "priority", "name", "attempts", "run_at", "last_error"):
            assert f"column-{column}" in body or f"column-short_{column}" in body

    def test_filter_by_status_and_queue(self, admin_client):
        failed = make_job("failed", queue="emails")
        make_job("ready", queue="emails")
        make_job("failed", queue="default")
        response = admin_client.get(
            reverse(CHANGELIST), {"status__exact": "failed", "queue": "emails"}
        )
        assert list(response.context["cl"].result_list) == [failed]

    def test_search_by_name_and_id(self, admin_client):
        mail = make_job(name="signupdemo.mailers.send_confirmation")
        other = make_job(name="tests.testapp.jobs.noop")
        by_name = admin_client.get(reverse(CHANGELIST), {"q": "mailers"})
        assert list(by_name.context["cl"].result_list) == [mail]
        by_id = admin_client.get(reverse(CHANGELIST), {"q": str(other.pk)})
        assert list(by_id.context["cl"].result_list) == [other]
        # A word is not an id; the search still works instead of failing.
        assert admin_client.get(reverse(CHANGELIST), {"q": "noop"}).status_code == 200


class TestDetail:
    def test_shows_payload_and_tracebacks_readably(self, admin_client):
        job = make_job("failed", payload={"args": [1], "kwargs": {"to": "ada@example.com"}})
        body = admin_client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
        assert '<pre class="jobs-json">{\n  &quot;args&quot;: [\n    1\n  ],' in body
        assert "ada@example.com" in body
        assert '<pre class="jobs-traceback">Traceback (most recent call last):' in body
        assert body.count("<details") == 3
        assert reverse("jobs:job", args=[job.pk]) in body

    def test_shows_keys_and_a_cancellation_request(self, admin_client):
        job = make_job(
            "running",
            unique_key="digest:7",
            concurrency_key="smtp",
            concurrency_limit=2,
            cancel_requested_at=timezone.now(),
        )
        body = admin_client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
        for label in ("Unique key", "Concurrency key", "Concurrency limit", "Cancel requested at"):
            assert label in body
        assert "digest:7" in body and "smtp" in body
        assert 'name="unique_key"' not in body  # shown, never edited

    def test_payload_cannot_be_edited(self, admin_client):
        job = make_job(payload={"args": [1]})
        url = reverse("admin:jobs_job_change", args=[job.pk])
        body = admin_client.get(url).content.decode()
        assert 'name="payload"' not in body
        assert 'name="_save"' not in body
        response = admin_client.post(url, {"payload": '{"args": [666]}', "_save": "Save"})
        assert response.status_code == 403
        job.refresh_from_db()
        assert job.payload == {"args": [1]}

    def test_no_add_and_no_plain_delete(self, admin_client):
        job = make_job()
        assert admin_client.get(reverse("admin:jobs_job_add")).status_code == 403
        assert admin_client.get(reverse("admin:jobs_job_delete", args=[job.pk])).status_code == 403
        body = admin_client.get(reverse(CHANGELIST)).content.decode()
        assert "delete_selected" not in body


class TestActions:
    def test_retry_now(self, admin_client):
        failed = make_job("failed")
        waiting = make_job("scheduled", attempts=2, run_at=timezone.now() + timedelta(hours=1))
        running = make_job("running")
        response = _act(admin_client, "retry_now", [failed, waiting, running])
        assert _messages(response) == [
            "2 jobs: will run again now. 1 job left alone (running, or not eligible)."
        ]
        for job in (failed, waiting):
            job.refresh_from_db()
            assert (job.status, job.attempts, job.failed_at) == ("ready", 0, None)
            assert job.run_at <= timezone.now()
        running.refresh_from_db()
        assert (running.status, running.attempts, running.locked_by) == ("running", 1, "host:1:abc")

    def test_run_at_once(self, admin_client):
        later = make_job("scheduled", run_at=timezone.now() + timedelta(days=1))
        failed = make_job("failed")
        response = _act(admin_client, "run_at_once", [later, failed])
        assert _messages(response) == [
            "1 job: due now. 1 job left alone (running, or not eligible)."
        ]
        later.refresh_from_db()
        failed.refresh_from_db()
        assert later.run_at <= timezone.now()
        assert failed.status == "failed"

    def test_discard_leaves_running_jobs(self, admin_client):
        jobs = [make_job(status) for status in ("ready", "failed", "succeeded", "running")]
        response = _act(admin_client, "discard", jobs)
        assert _messages(response) == [
            "3 jobs: discarded. 1 job left alone (running, or not eligible)."
        ]
        assert list(Job.objects.values_list("pk", flat=True)) == [jobs[-1].pk]

    def test_cancel_ends_waiting_jobs_and_asks_running_ones_to_stop(self, admin_client):
        from django.contrib.admin.models import LogEntry

        waiting = make_job("scheduled", run_at=timezone.now() + timedelta(days=1))
        running = make_job("running")
        done = make_job("succeeded")
        response = _act(admin_client, "cancel", [waiting, running, done])
        assert _messages(response) == [
            "2 jobs: cancelled, or asked to stop if running. 1 job left alone"
            " (running, or not eligible)."
        ]
        waiting.refresh_from_db()
        running.refresh_from_db()
        assert waiting.status == "cancelled"
        assert (running.status, running.cancel_requested_at is not None) == ("running", True)
        assert Job.objects.get(pk=done.pk).status == "succeeded"
        messages_by_job = dict(LogEntry.objects.values_list("object_id", "change_message"))
        assert messages_by_job == {
            str(waiting.pk): "Cancelled from the admin: it will not run.",
            str(running.pk): "Cancellation requested from the admin: its worker stops it.",
        }

    def test_cancel_needs_change_job(self, client, django_user_model):
        from django.contrib.auth.models import Permission

        user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
        user.user_permissions.add(Permission.objects.get(codename="view_job"))
        client.force_login(user)
        job = make_job("ready")
        assert '"cancel"' not in client.get(reverse(CHANGELIST)).content.decode()
        _act(client, "cancel", [job])
        assert Job.objects.get(pk=job.pk).status == "ready"

    def test_nothing_affected_is_a_warning(self, admin_client):
        running = make_job("running")
        response = _act(admin_client, "discard", [running])
        [message] = list(get_messages(response.wsgi_request))
        assert message.level_tag == "warning"
        assert Job.objects.filter(pk=running.pk).exists()

    def test_actions_are_logged_per_job_as_on_the_dashboard(self, admin_client):
        from django.contrib.admin.models import CHANGE, LogEntry

        jobs = [make_job("failed") for _ in range(2)]
        _act(admin_client, "retry_now", [*jobs, make_job("running")])
        entries = LogEntry.objects.order_by("object_id")
        assert [(e.object_id, e.action_flag) for e in entries] == [
            (str(job.pk), CHANGE) for job in jobs
        ]
        body = admin_client.get(reverse("jobs:job", args=[jobs[0].pk])).content.decode()
        assert "Retried from the admin: due now, attempts reset." in body

    def test_staff_without_job_permissions_get_no_actions(self, client, django_user_model):
        from django.contrib.auth.models import Permission

        user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
        user.user_permissions.add(Permission.objects.get(codename="view_job"))
        client.force_login(user)
        job = make_job("failed")
        response = client.get(reverse(CHANGELIST))
        assert response.status_code == 200
        assert "retry_now" not in response.content.decode()
        _act(client, "retry_now", [job])
        job.refresh_from_db()
        assert job.status == "failed"


def test_workers_are_read_only(admin_client):
    Worker.objects.create(name="web.1:42:abc", hostname="web.1", pid=42, queues=["emails"])
    body = admin_client.get(reverse("admin:jobs_worker_changelist")).content.decode()
    assert "web.1:42:abc" in body
    assert admin_client.get(reverse("admin:jobs_worker_add")).status_code == 403
    change = reverse("admin:jobs_worker_change", args=["web.1:42:abc"])
    assert admin_client.post(change, {"pid": 1}).status_code == 403


def test_paused_queues_can_be_added_and_removed(admin_client):
    admin_client.post(reverse("admin:jobs_pausedqueue_add"), {"queue": "emails"})
    assert list(PausedQueue.objects.values_list("queue", flat=True)) == ["emails"]
    delete = reverse("admin:jobs_pausedqueue_delete", args=["emails"])
    admin_client.post(delete, {"post": "yes"})
    assert not PausedQueue.objects.exists()
