"""Every destructive dashboard action asks first, with JavaScript or without.

Without the ``confirmed`` field (which the page's script adds when its dialog
is answered yes) a discard or cancel renders a confirmation page and changes
nothing; that page posts the same fields again, confirmed, or goes back.
"""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from jobs.dashboard import actions
from jobs.models import Job
from tests.jobs.jobrows import make_job

pytestmark = pytest.mark.django_db

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def _confirm_form(response) -> tuple[str, list[tuple[str, str]]]:
    """The confirmation page's form: where it posts, and its hidden fields (no CSRF token)."""
    assert response.status_code == 200
    body = response.content.decode()
    [form] = re.findall(r'<form method="post" action="([^"]+)" class="jd-confirm-form">', body)
    start = body.index('class="jd-confirm-form"')
    fields = [
        (name, unescape(value))
        for name, value in HIDDEN.findall(body[start : body.index("</form>", start)])
        if name != "csrfmiddlewaretoken"
    ]
    return form, fields


def _post_form(client, response):
    """Press the confirmation page's button, as a browser without JavaScript would."""
    action, fields = _confirm_form(response)
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return client.post(action, data)


class TestOneJob:
    def test_a_discard_without_confirmation_asks_and_deletes_nothing(self, admin_client):
        job = make_job("failed")
        here = reverse("jobs:list", args=["failed"]) + "?queue=default"
        response = admin_client.post(reverse("jobs:discard", args=[job.pk]), {"next": here})
        body = response.content.decode()
        assert f"<h1>Discard job #{job.pk}?</h1>" in body
        assert "This cannot be undone." in body
        assert f">Discard job #{job.pk}</button>" in body
        assert f'<a href="{here}">No, go back</a>' in body
        assert Job.objects.filter(pk=job.pk).exists()
        assert not LogEntry.objects.exists()
        # The page is no live page: nothing refreshes it under the question.
        assert "data-live-url" not in body

    def test_confirming_deletes_and_goes_where_the_form_said(self, admin_client):
        job = make_job("failed")
        here = reverse("jobs:list", args=["failed"]) + "?queue=default"
        asked = admin_client.post(reverse("jobs:discard", args=[job.pk]), {"next": here})
        action, fields = _confirm_form(asked)
        assert action == reverse("jobs:discard", args=[job.pk])
        assert ("confirmed", "1") in fields and ("next", here) in fields
        done = _post_form(admin_client, asked)
        assert (done.status_code, done["Location"]) == (302, here)
        assert not Job.objects.filter(pk=job.pk).exists()

    def test_cancel_asks_and_says_what_happens_to_a_waiting_job(self, admin_client):
        job = make_job("scheduled", run_at=timezone.now() + timedelta(hours=1))
        response = admin_client.post(reverse("jobs:cancel", args=[job.pk]))
        body = response.content.decode()
        assert f"<h1>Cancel job #{job.pk}?</h1>" in body and "will not run" in body
        assert Job.objects.get(pk=job.pk).status == "scheduled"
        _post_form(admin_client, response)
        assert Job.objects.get(pk=job.pk).status == "cancelled"

    def test_cancel_of_a_running_job_says_it_asks_it_to_stop(self, admin_client, settings):
        settings.JOBS = {**settings.JOBS, "CANCEL_GRACE": 7}
        job = make_job("running")
        response = admin_client.post(reverse("jobs:cancel", args=[job.pk]))
        body = response.content.decode()
        assert f"<h1>Ask job #{job.pk} to stop?</h1>" in body
        assert "7 s later" in body
        assert Job.objects.get(pk=job.pk).cancel_requested_at is None
        _post_form(admin_client, response)
        job.refresh_from_db()
        assert (job.status, job.cancel_requested_at is not None) == ("running", True)

    def test_the_way_back_never_leaves_the_site(self, admin_client):
        job = make_job("failed")
        response = admin_client.post(
            reverse("jobs:discard", args=[job.pk]), {"next": "https://evil.example/"}
        )
        assert f'<a href="{reverse("jobs:job", args=[job.pk])}">No, go back</a>' in (
            response.content.decode()
        )
        assert 'href="https://evil.example/"' not in response.content.decode()

    def test_nothing_to_do_needs_no_question(self, admin_client):
        """A job the action would not change gets the usual refusal, not a question."""
        job = make_job("succeeded")
        response = admin_client.post(reverse("jobs:cancel", args=[job.pk]))
        assert response.status_code == 302
        assert Job.objects.get(pk=job.pk).status == "succeeded"

    def test_retry_and_run_now_are_not_destructive(self, admin_client):
        job = make_job("failed")
        assert admin_client.post(reverse("jobs:retry", args=[job.pk])).status_code == 302
        assert Job.objects.get(pk=job.pk).status == "ready"

    def test_view_only_staff_get_403_not_a_question(self, client, django_user_model):
        from tests.jobs.test_dashboard import staff_user

        client.force_login(staff_user(django_user_model, "viewer", "view_job"))
        job = make_job("failed")
        assert client.post(reverse("jobs:discard", args=[job.pk])).status_code == 403
        assert client.post(reverse("jobs:cancel", args=[job.pk])).status_code == 403


class TestBulk:
    def _bulk(self, client, status, **data):
        return client.post(reverse("jobs:bulk", args=[status]), data)

    def test_ticked_jobs_ask_with_their_count(self, admin_client):
        ticked = [make_job("failed") for _ in range(3)]
        kept = make_job("failed")
        here = reverse("jobs:list", args=["failed"]) + "?sort=oldest"
        response = self._bulk(
            admin_client, "failed", action="discard", ids=[j.pk for j in ticked], next=here
        )
        body = response.content.decode()
        assert "<h1>Discard 3 failed jobs?</h1>" in body
        assert Job.objects.count() == 4
        _, fields = _confirm_form(response)
        assert [v for k, v in fields if k == "ids"] == [str(j.pk) for j in ticked]
        done = _post_form(admin_client, response)
        assert done["Location"] == here
        assert list(Job.objects.values_list("pk", flat=True)) == [kept.pk]

    def test_every_match_asks_with_the_filters_kept(self, admin_client):
        emails = [make_job("ready", queue="emails") for _ in range(2)]
        other = make_job("ready", queue="default")
        response = self._bulk(
            admin_client, "ready", action="cancel", scope="all", queue="emails", range=""
        )
        assert "<h1>Cancel 2 ready jobs?</h1>" in response.content.decode()
        assert not Job.objects.filter(status="cancelled").exists()
        _post_form(admin_client, response)
        assert set(Job.objects.filter(status="cancelled").values_list("pk", flat=True)) == {
            j.pk for j in emails
        }
        assert Job.objects.get(pk=other.pk).status == "ready"

    def test_more_than_a_request_changes_says_so(self, admin_client, monkeypatch):
        monkeypatch.setattr(actions, "REQUEST_LIMIT", 2)
        for _ in range(3):
            make_job("succeeded")
        response = self._bulk(admin_client, "succeeded", action="discard", scope="all")
        body = response.content.decode()
        assert "<h1>Discard 2+ succeeded jobs?</h1>" in body
        assert "This request changes the first 2" in body
        assert Job.objects.count() == 3

    def test_running_jobs_are_asked_to_stop(self, admin_client):
        job = make_job("running")
        response = self._bulk(admin_client, "running", action="cancel", ids=[job.pk])
        assert "<h1>Ask 1 running job to stop?</h1>" in response.content.decode()
        assert Job.objects.get(pk=job.pk).cancel_requested_at is None
        done = _post_form(admin_client, response)
        assert done.status_code == 302
        assert Job.objects.get(pk=job.pk).cancel_requested_at is not None

    def test_no_match_needs_no_question(self, admin_client):
        response = self._bulk(admin_client, "failed", action="discard", scope="all")
        assert response.status_code == 302

    def test_retry_is_not_asked(self, admin_client):
        job = make_job("failed")
        response = self._bulk(admin_client, "failed", action="retry", ids=[job.pk])
        assert response.status_code == 302
        assert Job.objects.get(pk=job.pk).status == "ready"


class TestThePagesAskInTheBrowserToo:
    """The dialogs the page's script shows (it then adds ``confirmed``)."""

    def test_every_destructive_button_carries_a_question(self, admin_client):
        waiting = make_job("ready")
        failed = make_job("failed")
        ready_list = admin_client.get(reverse("jobs:list", args=["ready"])).content.decode()
        assert 'value="cancel" class="jd-btn jd-btn-danger"' in ready_list
        assert 'data-confirm="Cancel these jobs? They will not run."' in ready_list
        assert 'data-confirm="Cancel this job? It will not run."' in ready_list
        assert 'data-confirm="Delete this job? This cannot be undone."' in ready_list
        job_page = admin_client.get(reverse("jobs:job", args=[failed.pk])).content.decode()
        assert 'data-confirm="Delete this job? This cannot be undone."' in job_page
        waiting_page = admin_client.get(reverse("jobs:job", args=[waiting.pk])).content.decode()
        assert 'data-confirm="Cancel this job? It will not run."' in waiting_page

    def test_the_script_sends_the_confirmation(self):
        from pathlib import Path

        import jobs

        script = (Path(jobs.__file__).parent / "static/jobs/dashboard.js").read_text()
        assert 'yes.name = "confirmed"' in script
