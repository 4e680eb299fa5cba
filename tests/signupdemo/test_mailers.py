"""The emails themselves: a text and an HTML part, absolute working links."""

import re

import pytest
from django.contrib.auth import get_user_model

from jobs import Mailer
from signupdemo.mailers import SignupMailer
from signupdemo.tokens import read_confirmation_token

User = get_user_model()
pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return User.objects.create_user(
        "ada@example.com", "ada@example.com", "x", first_name="Ada <O'Brien>", is_active=False
    )


@pytest.fixture
def signup_row(user):
    from signupdemo.models import Signup

    return Signup.objects.create(user=user)


@pytest.mark.parametrize("kind", ["confirmation", "reminder"])
def test_each_email_has_text_and_html_with_an_absolute_confirm_link(
    kind, user, signup_row, settings
):
    message = getattr(SignupMailer(), kind)(user, site_url="https://signup.example.org")

    assert message.to == ["ada@example.com"]
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"

    text_links = re.findall(r"https?://\S+", message.body)
    html_links = set(re.findall(r'href="([^"]+)"', html))
    confirm_link = next(link for link in text_links if "/confirm/" in link)
    assert confirm_link.startswith("https://signup.example.org/confirm/")
    assert confirm_link in html_links
    assert all(link.startswith("https://signup.example.org/") for link in html_links)

    token = confirm_link.rstrip("/").rsplit("/", 1)[1]
    assert read_confirmation_token(token).user == user


def test_names_are_escaped_in_html_and_plain_in_text(user, signup_row):
    message = SignupMailer().confirmation(user, site_url="https://signup.example.org")
    assert "Hello Ada <O'Brien>," in message.body
    html = message.alternatives[0][0]
    assert "Ada &lt;O&#x27;Brien&gt;" in html
    assert "<O'Brien>" not in html


def test_calling_a_method_only_builds_the_message(user, signup_row, mailoutbox):
    SignupMailer().reminder(user, site_url="https://signup.example.org")
    assert mailoutbox == []
    assert issubclass(SignupMailer, Mailer)
    assert SignupMailer.mailer == "default"
