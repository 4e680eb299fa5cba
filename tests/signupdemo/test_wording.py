"""What the site says when people do what the happy path does not: every answer names the fix."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job
from jobs.testing import work_off
from signupdemo import signup
from signupdemo.models import ScheduledEmail

from .conftest import PASSWORD

User = get_user_model()
pytestmark = pytest.mark.django_db


def confirmations():
    return ScheduledEmail.objects.filter(kind=ScheduledEmail.Kind.CONFIRMATION).count()


def test_password_similar_to_the_address_names_the_email_address(sign_up):
    response = sign_up(email="ada.lovelace@example.com", password="ada.lovelace@example")
    body = response.content.decode()
    assert "too similar to the email address" in body
    assert "username" not in body


def test_get_logout_shows_a_log_out_button(client):
    ada = User.objects.create_user("ada@example.com", "ada@example.com", PASSWORD)
    client.force_login(ada)
    page = client.get(reverse("logout"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "You are logged in as <strong>ada@example.com</strong>" in body
    assert f'<form method="post" action="{reverse("logout")}">' in body

    assert client.post(reverse("logout")).status_code == 302
    assert "_auth_user_id" not in client.session
    assert "You are not logged in" in client.get(reverse("logout")).content.decode()


def test_a_logged_in_user_refused_is_not_told_to_log_in(client, settings):
    settings.DEBUG = False
    bob = User.objects.create_user("bob@example.com", "bob@example.com", PASSWORD)
    client.force_login(bob)
    response = client.get("/jobs/")
    assert response.status_code == 403
    body = response.content.decode()
    assert "You are logged in as <strong>bob@example.com</strong>" in body
    assert "log in" not in body.lower().replace("logged in", "")

    anonymous = Client().get(reverse("admin:index"))
    assert anonymous.status_code == 302  # anonymous visitors are sent to log in instead


def test_signing_up_while_logged_in_logs_the_old_account_out(client, sign_up, outbox_mailer):
    bob = User.objects.create_user("bob@example.com", "bob@example.com", PASSWORD)
    client.force_login(bob)
    form = client.get(reverse("signup")).content.decode()
    assert "Signing up for another account logs you out of this one" in form

    response = sign_up(email="ada@example.com", name="Ada")
    assert response["Location"] == reverse("watch")
    assert "_auth_user_id" not in client.session
    work_off()
    watch = client.get(reverse("watch")).content.decode()
    assert "ada@example.com" in watch and "bob@example.com" not in watch
    [message] = client.get(reverse("watch_status")).json()["messages"]
    assert message["to"] == "ada@example.com"
    assert client.get(message["url"]).status_code == 200


def test_resend_while_the_confirmation_is_queued_queues_nothing(client, sign_up):
    sign_up()
    response = client.post(reverse("resend"), {"email": "ada@example.com"}, follow=True)
    assert confirmations() == 1
    assert "still queued, so no second one was" in response.content.decode()

    # Retrying (a failed attempt, due again later) and sending count as on the
    # way too; each try an hour apart, past the limit of 3 emails an hour.
    job = Job.objects.get(name__endswith="send_confirmation")
    later = timezone.now()
    for status, attempts in (("scheduled", 1), ("running", 1)):
        later += timedelta(hours=1)
        Job.objects.filter(pk=job.pk).update(status=status, attempts=attempts)
        with time_machine.travel(later, tick=False):
            assert client.post(reverse("resend"), {"email": "ada@example.com"}).status_code == 302
        assert confirmations() == 1, status

    # Once it has gone out, or given up, a fresh link is queued.
    Job.objects.filter(pk=job.pk).update(status="failed")
    with time_machine.travel(later + timedelta(hours=1), tick=False):
        client.post(reverse("resend"), {"email": "ada@example.com"})
    assert confirmations() == 2


def test_strangers_cannot_tell_a_pending_resend_from_anything_else(sign_up):
    sign_up(client=Client())
    stranger = Client()
    pending = stranger.post(reverse("resend"), {"email": "ada@example.com"})
    nobody = stranger.post(reverse("resend"), {"email": "nobody@example.com"})
    assert pending.status_code == nobody.status_code == 200
    assert pending.content.decode().replace("ada@", "X@") == nobody.content.decode().replace(
        "nobody@", "X@"
    )
    assert confirmations() == 1


def test_unconfirmed_login_reaches_its_own_watch_page_with_a_resend_button(sign_up, outbox_mailer):
    sign_up(client=Client())  # the browser that signed up is gone
    work_off()
    browser = Client()
    response = browser.post(
        reverse("login"), {"username": "ADA@example.com", "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain == [(reverse("watch"), 302)]
    body = response.content.decode()
    assert "Your address is not confirmed yet" in body
    assert "ada@example.com" in body
    assert f'action="{reverse("resend")}"' in body and "Send a fresh link</button>" in body
    [message] = browser.get(reverse("watch_status")).json()["messages"]
    assert browser.get(message["url"]).status_code == 200

    # Not logged in: nothing that needs a confirmed account.
    assert "_auth_user_id" not in browser.session
    assert "Log out" not in body
    assert browser.get("/jobs/")["Location"].startswith(reverse("login"))

    # The button queues a fresh link once the first one has gone out.
    resent = browser.post(reverse("resend"), {"email": "ada@example.com"}, follow=True)
    assert "A fresh confirmation link is on its way." in resent.content.decode()
    assert confirmations() == 2


def test_a_wrong_password_or_a_switched_off_account_gets_nothing(sign_up):
    sign_up(client=Client())
    wrong = Client().post(reverse("login"), {"username": "ada@example.com", "password": "nope"})
    assert wrong.status_code == 200
    assert "do not match an active account" in wrong.content.decode()

    # Confirmed, then switched off by staff: the right password opens nothing.
    ada = User.objects.get()
    signup.confirm(ada)
    User.objects.filter(pk=ada.pk).update(is_active=False)
    browser = Client()
    refused = browser.post(reverse("login"), {"username": "ada@example.com", "password": PASSWORD})
    assert refused.status_code == 200
    assert browser.get(reverse("watch_status")).status_code == 403
