"""Fixtures for the signup site's tests: real database, real queue, no mocks."""

import pytest
from django.urls import reverse

PASSWORD = "correct horse battery staple"


@pytest.fixture
def signup_form():
    """Valid signup form data; tests change what they need."""
    return {"email": "ada@example.com", "name": "Ada", "password": PASSWORD}


@pytest.fixture
def sign_up(client):
    """Post the signup form as a browser would; returns the response."""

    def post(email="ada@example.com", name="Ada", password=PASSWORD, client=client, **extra):
        return client.post(
            reverse("signup"), {"email": email, "name": name, "password": password}, **extra
        )

    return post


@pytest.fixture
def outbox_mailer(settings):
    """Send mail to the outbox backend, as the site does with no SMTP configured.

    (Django's test runner swaps every mailer for locmem; this puts ours back.)
    """
    settings.MAILERS = {"default": {"BACKEND": "signupdemo.outbox.OutboxEmailBackend"}}
