"""End to end: a signup's confirmation email delivered by the real worker command."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from signupdemo.models import OutboxMessage, ScheduledEmail

User = get_user_model()


@pytest.mark.django_db(transaction=True)
def test_worker_process_delivers_the_confirmation_into_the_outbox(manage):
    browser = Client()
    response = browser.post(
        reverse("signup"),
        {"email": "ada@example.com", "name": "Ada", "password": "correct horse battery staple"},
    )
    assert response.status_code == 302

    worker = manage("jobs", "workoff")
    assert worker.wait(timeout=60) == 0, worker.output

    user = User.objects.get()
    message = OutboxMessage.objects.get()
    assert message.user == user
    assert message.subject == "Confirm your email address"
    assert "/confirm/" in message.body_text and "/confirm/" in message.body_html
    emails = {e.kind: e.state for e in ScheduledEmail.objects.filter(user=user)}
    assert emails == {"confirmation": "sent", "reminder": "queued"}

    # And the browser that signed up can read it on the watch page's feed.
    data = browser.get(reverse("watch_status")).json()
    assert [m["id"] for m in data["messages"]] == [message.pk]
    assert data["emails"][0]["progress"] == "sent"
