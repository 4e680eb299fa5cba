"""Password reset: Django's views and tokens, the email sent by a worker, no account revealed."""

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from jobs.models import Job
from jobs.testing import work_off
from signupdemo import limits, signup
from signupdemo.models import OutboxMessage

from .conftest import PASSWORD

User = get_user_model()
pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def ada(sign_up):
    sign_up(client=Client())
    user = User.objects.get()
    signup.confirm(user)
    work_off()  # her confirmation: skipped, she has confirmed
    return user


def ask_for_reset(email, client=None, **extra):
    return (client or Client()).post(reverse("password_reset"), {"email": email}, **extra)


def reset_link(message):
    [link] = set(re.findall(r"https?://\S+/password-reset/\S+/\S+/", message.body_text))
    return link


def test_login_page_links_to_password_reset(client):
    assert reverse("password_reset") in client.get(reverse("login")).content.decode()


def test_the_reset_email_goes_through_the_queue_and_resets(ada, outbox_mailer):
    response = ask_for_reset("ADA@example.com")
    assert response["Location"] == reverse("password_reset_done")
    job = Job.objects.get(name__endswith="password_reset")
    assert job.queue == "emails"
    # The token is made in the worker: no job row holds one.
    assert "password-reset/" not in json.dumps(job.payload)
    assert not OutboxMessage.objects.exists()  # nothing sent in the request

    work_off()
    message = OutboxMessage.objects.get()
    assert (message.user, message.subject) == (ada, "Reset your password")
    link = reset_link(message)
    assert link.startswith("http://testserver/password-reset/")
    assert link in message.body_html

    browser = Client()
    form_page = browser.get(link, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    set_password_url = form_page.redirect_chain[-1][0]
    done = browser.post(
        set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert done["Location"] == reverse("password_reset_complete")
    assert browser.login(username="ada@example.com", password=NEW_PASSWORD)
    assert not Client().login(username="ada@example.com", password=PASSWORD)

    # Used once: the link is dead now.
    again = Client().get(link, follow=True).content.decode()
    assert "This link does not work any more" in again

    # And the reset email is hers to read on her watch page.
    [listed] = browser.get(reverse("watch_status")).json()["messages"]
    assert listed["subject"] == "Reset your password"


def test_the_new_password_is_validated_naming_the_email_address(ada, outbox_mailer):
    ask_for_reset("ada@example.com")
    work_off()
    browser = Client()
    form_page = browser.get(reset_link(OutboxMessage.objects.get()), follow=True)
    weak = "ada@example.com"
    response = browser.post(
        form_page.redirect_chain[-1][0], {"new_password1": weak, "new_password2": weak}
    )
    assert response.status_code == 200
    assert "too similar to the email address" in response.content.decode()


@pytest.mark.parametrize("email", ["nobody@example.com", "eve@example.com"])
def test_no_account_is_revealed_and_nothing_is_queued(ada, sign_up, email):
    sign_up(email="eve@example.com", name="Eve", client=Client())  # unconfirmed
    jobs_before = Job.objects.count()
    known = ask_for_reset("ada@example.com")
    other = ask_for_reset(email)
    assert (other.status_code, other["Location"]) == (known.status_code, known["Location"])
    assert Job.objects.count() == jobs_before + 1  # Ada's only


def test_same_limits_as_a_fresh_link(ada):
    # Per address, whoever asks: the signup's confirmation counted too.
    for n in range(limits.EMAILS_PER_ADDRESS.max_count - 1):
        assert ask_for_reset("ada@example.com", REMOTE_ADDR=f"192.0.2.{n + 10}").status_code == 302
    refused = ask_for_reset("ada@example.com", REMOTE_ADDR="192.0.2.99")
    assert refused.status_code == 429
    assert refused["Retry-After"]
    # Unknown addresses are limited alike, so a 429 reveals nothing.
    for _ in range(limits.EMAILS_PER_ADDRESS.max_count):
        ask_for_reset("nobody@example.com", REMOTE_ADDR="192.0.2.50")
    assert ask_for_reset("nobody@example.com", REMOTE_ADDR="192.0.2.51").status_code == 429

    # Per client, whatever the address.
    client = Client()
    for n in range(limits.PASSWORD_RESETS_PER_CLIENT.max_count):
        ask_for_reset(f"user{n}@example.com", client=client)
    assert ask_for_reset("another@example.com", client=client).status_code == 429
