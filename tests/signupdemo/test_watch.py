"""The 'watch your emails' page and its JSON feed: live, and strictly one's own."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs.testing import work_off
from signupdemo import signup
from signupdemo.models import OutboxMessage
from signupdemo.tokens import WATCH_SESSION_KEY

User = get_user_model()
pytestmark = pytest.mark.django_db


def status(client):
    response = client.get(reverse("watch_status"))
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    return response.json()


def test_signup_browser_watches_its_emails_before_confirming(sign_up, client):
    sign_up()
    page = client.get(reverse("watch"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "ada@example.com" in body
    assert "Confirmation link" in body and "Reminder to confirm" in body
    assert reverse("watch_status") in body  # where watch.js polls

    data = status(client)
    assert [(e["kind"], e["progress"]) for e in data["emails"]] == [
        ("confirmation", "queued"),
        ("reminder", "queued"),
    ]
    assert data["messages"] == []
    assert data["done"] is False


def test_feed_follows_the_job_from_queued_to_sent(sign_up, client, outbox_mailer):
    sign_up()
    work_off()

    data = status(client)
    confirmation = data["emails"][0]
    assert (confirmation["progress"], confirmation["progress_label"]) == ("sent", "Sent")
    assert confirmation["finished_at"]
    [message] = data["messages"]
    assert message["subject"] == "Confirm your email address"
    assert message["url"] == reverse("outbox_message", args=[message["id"]])

    opened = client.get(message["url"])
    assert opened.status_code == 200
    assert "/confirm/" in opened.content.decode()


def test_running_job_shows_as_sending(sign_up, client):
    sign_up()
    from jobs.models import Job

    Job.objects.filter(name__endswith="send_confirmation").update(status=Job.Status.RUNNING)
    assert status(client)["emails"][0]["progress"] == "sending"


def test_a_cancelled_email_shows_as_cancelled_and_a_blocked_one_as_waiting(sign_up, client):
    from jobs.models import Job

    sign_up()
    reminder = Job.objects.get(name__endswith="send_reminder")
    assert reminder.cancel() == "cancelled"
    Job.objects.filter(name__endswith="send_confirmation").update(status=Job.Status.BLOCKED)
    data = status(client)
    confirmation, cancelled = data["emails"]
    assert (confirmation["progress"], confirmation["progress_label"]) == ("queued", "Queued")
    assert (cancelled["progress"], cancelled["progress_label"]) == ("cancelled", "Cancelled")
    assert cancelled["finished_at"]
    assert data["done"] is False  # the confirmation still waits
    body = client.get(reverse("watch")).content.decode()
    assert '<span class="badge badge-cancelled" data-progress>Cancelled</span>' in body
    assert ": it will not be sent" in body

    Job.objects.filter(name__endswith="send_confirmation").update(
        status=Job.Status.CANCELLED, finished_at=timezone.now()
    )
    assert status(client)["done"] is True


def test_another_visitor_sees_none_of_it(sign_up, client, outbox_mailer):
    sign_up()
    work_off()
    ada_message = OutboxMessage.objects.get()

    eve = Client()
    sign_up(email="eve@example.com", name="Eve", client=eve, REMOTE_ADDR="192.0.2.66")
    data = status(eve)
    assert {e["kind"] for e in data["emails"]} == {"confirmation", "reminder"}
    assert len(data["emails"]) == 2
    assert data["messages"] == []
    assert eve.get(reverse("outbox_message", args=[ada_message.pk])).status_code == 404
    assert "ada@example.com" not in eve.get(reverse("watch")).content.decode()


def test_anonymous_visitors_get_nothing(client, sign_up, outbox_mailer):
    sign_up(client=Client())
    work_off()
    message = OutboxMessage.objects.get()

    assert client.get(reverse("watch_status")).status_code == 403
    assert client.get(reverse("watch"))["Location"].startswith(reverse("login"))
    assert client.get(reverse("outbox_message", args=[message.pk]))["Location"].startswith(
        reverse("login")
    )


def test_a_forged_watch_session_value_is_ignored(client, sign_up):
    sign_up(client=Client())
    victim = User.objects.get()
    session = client.session
    session[WATCH_SESSION_KEY] = f"{victim.pk}:forged:signature"
    session.save()
    assert client.get(reverse("watch_status")).status_code == 403


def test_logged_in_user_watches_their_own(client, sign_up, outbox_mailer):
    sign_up(client=Client())
    work_off()
    ada = User.objects.get()
    bob = User.objects.create_user("bob@example.com", "bob@example.com", "x")

    client.force_login(bob)
    assert status(client)["emails"] == []
    signup.confirm(ada)  # an inactive account cannot log in
    client.force_login(ada)
    assert len(status(client)["emails"]) == 2


def test_outbox_message_page_shows_text_and_sandboxed_html(
    sign_up, client, outbox_mailer, settings
):
    settings.SITE_URL = "https://demo.example.org"
    sign_up()
    work_off()
    message = OutboxMessage.objects.get()
    body = client.get(reverse("outbox_message", args=[message.pk])).content.decode()
    # The text part's confirmation link is clickable right here.
    assert '<a href="https://demo.example.org/confirm/' in body
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in body
    assert 'srcdoc="&lt;!doctype html&gt;' in body  # the HTML part, escaped into the attribute


def test_both_lists_read_oldest_first(client, sign_up, outbox_mailer):
    sign_up()
    work_off()
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        client.post(reverse("resend"), {"email": "ada@example.com"})
        work_off()
        data = status(client)
    assert [e["kind"] for e in data["emails"]] == ["confirmation", "confirmation", "reminder"]
    sent = [m["sent_at"] for m in data["messages"]]
    assert len(sent) == 2 and sent == sorted(sent)
    page = client.get(reverse("watch")).content.decode()
    ids = [str(m["id"]) for m in data["messages"]]
    assert page.index(f'data-id="{ids[0]}"') < page.index(f'data-id="{ids[1]}"')


def test_times_have_a_zone_without_javascript_and_times_js_on_every_page(client, sign_up):
    sign_up()
    page = client.get(reverse("watch")).content.decode()
    assert re.search(r'<time datetime="[^"]+" data-time>\w{3} \d+, \d\d:\d\d:\d\d UTC</time>', page)
    for name in ("home", "watch", "login"):
        assert "/static/times.js" in client.get(reverse(name)).content.decode()
