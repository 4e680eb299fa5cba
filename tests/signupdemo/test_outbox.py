"""The outbox mail backend: the default mailer when no SMTP server is configured."""

import pytest
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, EmailMultiAlternatives, mailers

from signupdemo.models import OutboxMessage
from signupdemo.outbox import OutboxEmailBackend, outbox_enabled

User = get_user_model()
pytestmark = pytest.mark.django_db


def test_site_settings_use_the_outbox_without_smtp():
    from signupdemo import settings as site_settings

    assert site_settings.MAILERS["default"]["BACKEND"] == "signupdemo.outbox.OutboxEmailBackend"


def test_sent_message_is_stored_with_both_parts(outbox_mailer):
    message = EmailMultiAlternatives(
        "Hello", "Text body", "site@example.com", ["ada@example.com"], cc=["bob@example.com"]
    )
    message.attach_alternative("<p>HTML body</p>", "text/html")
    assert message.send() == 1

    stored = OutboxMessage.objects.get()
    assert stored.subject == "Hello"
    assert stored.from_email == "site@example.com"
    assert stored.to == "ada@example.com, bob@example.com"
    assert stored.body_text == "Text body"
    assert stored.body_html == "<p>HTML body</p>"
    assert stored.mailer == "default"
    assert stored.sent_at is not None


def test_message_is_linked_to_the_account_it_was_sent_to(outbox_mailer):
    ada = User.objects.create_user("ada@example.com", "ada@example.com", "x")
    EmailMessage("Hi", "Body", to=["Ada Lovelace <ADA@example.com>"]).send()
    EmailMessage("Hi", "Body", to=["stranger@example.com"]).send()

    assert OutboxMessage.objects.get(to__startswith="Ada").user == ada
    assert OutboxMessage.objects.get(to="stranger@example.com").user is None


def test_html_only_message_and_empty_recipients():
    backend = OutboxEmailBackend(alias="outbox")
    html_only = EmailMessage("Hi", "<b>hi</b>", to=["a@example.com"])
    html_only.content_subtype = "html"
    assert backend.send_messages([html_only, EmailMessage("Nobody", "x", to=[])]) == 1
    stored = OutboxMessage.objects.get()
    assert (stored.body_text, stored.body_html, stored.mailer) == ("", "<b>hi</b>", "outbox")


def test_unknown_options_are_reported_like_any_mailer(settings):
    from django.core.mail import InvalidMailer

    settings.MAILERS = {
        "default": {"BACKEND": "signupdemo.outbox.OutboxEmailBackend", "OPTIONS": {"host": "x"}}
    }
    with pytest.raises(InvalidMailer):
        mailers["default"]


def test_outbox_enabled_follows_the_setting(settings, outbox_mailer):
    assert outbox_enabled()
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend"}}
    assert not outbox_enabled()
