"""Confirmation links: signed, expiring, single-purpose; and asking for a fresh one."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.urls import reverse

from jobs.testing import work_off
from signupdemo.models import ScheduledEmail
from signupdemo.tokens import CONFIRM_MAX_AGE, make_confirmation_token

User = get_user_model()
pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(sign_up, client):
    """An account that signed up and has not confirmed, and a fresh browser."""
    sign_up()
    client.logout()
    return User.objects.get()


def confirm_url(user):
    return reverse("confirm", args=[make_confirmation_token(user)])


def test_link_shows_a_button_and_changes_nothing_on_get(client, pending):
    # Mail scanners fetch links; a GET must not confirm anything.
    response = client.get(confirm_url(pending))
    assert response.status_code == 200
    assert "Confirm my address" in response.content.decode()
    pending.refresh_from_db()
    assert not pending.is_active


def test_confirming_activates_and_logs_in(client, pending):
    response = client.post(confirm_url(pending))
    assert response.status_code == 302
    assert response["Location"] == reverse("watch")
    pending.refresh_from_db()
    assert pending.is_active
    assert pending.signup.is_confirmed
    assert int(client.session["_auth_user_id"]) == pending.pk


def test_second_click_says_already_confirmed(client, pending):
    url = confirm_url(pending)
    client.post(url)
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code == 200
        assert "already confirmed" in response.content.decode()


def test_tampered_link_gets_a_clear_page_and_a_fresh_link_form(client, pending):
    token = make_confirmation_token(pending)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = client.get(reverse("confirm", args=[tampered]))
    assert response.status_code == 400
    body = response.content.decode()
    assert "not valid" in body
    assert reverse("resend") in body
    assert client.post(reverse("confirm", args=[tampered])).status_code == 400
    pending.refresh_from_db()
    assert not pending.is_active


def test_expired_link_offers_a_fresh_one_for_its_address(client, pending):
    url = confirm_url(pending)
    with time_machine.travel(CONFIRM_MAX_AGE + timedelta(minutes=1)):
        response = client.post(url)
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert response.context["form"].initial["email"] == "ada@example.com"
    pending.refresh_from_db()
    assert not pending.is_active


def test_link_still_works_just_before_it_expires(client, pending):
    url = confirm_url(pending)
    with time_machine.travel(CONFIRM_MAX_AGE - timedelta(minutes=1)):
        assert client.post(url).status_code == 302


def test_link_stops_working_if_the_address_changes(client, pending):
    url = confirm_url(pending)
    pending.email = "eve@example.com"
    pending.save()
    assert client.get(url).status_code == 400


def test_link_cannot_undo_a_staff_deactivation(client, pending):
    url = confirm_url(pending)
    client.post(url)
    client.logout()
    User.objects.filter(pk=pending.pk).update(is_active=False)

    response = client.post(url)
    assert "already confirmed" in response.content.decode()
    pending.refresh_from_db()
    assert not pending.is_active


def test_resend_queues_a_fresh_confirmation_for_an_unconfirmed_account(client, pending):
    work_off()  # the first one went out (while it is queued, a resend queues nothing)
    response = client.post(reverse("resend"), {"email": "ADA@example.com"})
    assert response.status_code == 200
    assert "If <strong>ada@example.com</strong> belongs to an account" in response.content.decode()
    emails = ScheduledEmail.objects.filter(user=pending, kind="confirmation")
    assert emails.count() == 2
    assert emails.last().job.queue == "emails"


@pytest.mark.parametrize("who", ["unknown", "confirmed"])
def test_resend_answers_the_same_and_queues_nothing_otherwise(client, pending, who):
    if who == "confirmed":
        client.post(confirm_url(pending))
        client.logout()
        email = "ada@example.com"
    else:
        email = "nobody@example.com"
    before = ScheduledEmail.objects.count()

    response = client.post(reverse("resend"), {"email": email})
    assert response.status_code == 200
    assert f"If <strong>{email}</strong> belongs to an account" in response.content.decode()
    assert ScheduledEmail.objects.count() == before


def test_resend_from_the_signup_browser_goes_back_to_the_watch_page(sign_up, client):
    sign_up()
    response = client.post(reverse("resend"), {"email": "ada@example.com"})
    assert response.status_code == 302
    assert response["Location"] == reverse("watch")


def test_resend_form_rejects_a_bad_address(client):
    response = client.post(reverse("resend"), {"email": "nope"})
    assert response.status_code == 200
    assert response.context["form"].errors["email"]
