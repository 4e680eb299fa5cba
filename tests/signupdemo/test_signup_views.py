"""The signup and login forms: what a visitor sees for good and bad input."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from jobs.models import Job
from signupdemo.models import Signup

from .conftest import PASSWORD

User = get_user_model()
pytestmark = pytest.mark.django_db


def test_signup_page_labels_every_field(client):
    response = client.get(reverse("signup"))
    assert response.status_code == 200
    html = response.content.decode()
    for field in ("email", "name", "password"):
        assert f'for="id_{field}"' in html


def test_signup_creates_an_inactive_account_and_shows_the_watch_page(sign_up):
    response = sign_up(email="Ada@Example.COM")

    assert response.status_code == 302
    assert response["Location"] == reverse("watch")
    user = User.objects.get()
    assert user.email == user.username == "ada@example.com"
    assert user.first_name == "Ada"
    assert not user.is_active
    assert user.check_password(PASSWORD)
    assert not Signup.objects.get(user=user).is_confirmed


def test_signup_does_no_email_io_in_the_request(sign_up, mailoutbox):
    sign_up()
    assert mailoutbox == []
    assert sorted(Job.objects.values_list("status", flat=True)) == ["ready", "scheduled"]


def test_duplicate_address_is_a_form_error_whatever_its_case(sign_up):
    sign_up()
    response = sign_up(email="ADA@example.com", name="Someone else")

    assert response.status_code == 200
    assert response.context["form"].has_error("email", "duplicate")
    assert "get a fresh confirmation link" in response.content.decode()
    assert User.objects.count() == 1
    assert Job.objects.count() == 2


@pytest.mark.parametrize("email", ["not-an-address", "ada@", "", "a" * 140 + "@example.com"])
def test_invalid_address_is_a_form_error(sign_up, email):
    response = sign_up(email=email)
    assert response.status_code == 200
    assert response.context["form"].errors["email"]
    assert not User.objects.exists()
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "password, reason",
    [
        ("short", "too short"),
        ("password123", "too common"),
        ("8675309421", "entirely numeric"),
        ("ada@example.com!", "too similar"),
    ],
)
def test_weak_password_is_a_form_error(sign_up, password, reason):
    response = sign_up(password=password)
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors["password"])
    assert reason in errors
    assert not User.objects.exists()


def test_missing_name_is_a_form_error(sign_up):
    response = sign_up(name="  ")
    assert response.context["form"].errors["name"]


def test_login_with_a_confirmed_account(client):
    user = User.objects.create_user("bob@example.com", "bob@example.com", PASSWORD)
    response = client.post(reverse("login"), {"username": "BOB@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == user.pk


def test_login_of_an_unconfirmed_account_watches_it_and_says_why(sign_up, client):
    sign_up()
    client.logout()  # forget the watch session too
    response = client.post(reverse("login"), {"username": "ada@example.com", "password": PASSWORD})
    assert response["Location"] == reverse("watch")
    assert "_auth_user_id" not in client.session
    watch = client.get(response["Location"]).content.decode()
    assert "Your address is not confirmed yet" in watch


def test_logout_is_a_post(client):
    user = User.objects.create_user("bob@example.com", "bob@example.com", PASSWORD)
    client.force_login(user)
    assert client.post(reverse("logout")).status_code == 302
    assert "_auth_user_id" not in client.session
