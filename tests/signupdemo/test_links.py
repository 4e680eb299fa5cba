"""Links in emails point at the address the visitor used, unless SITE_URL says otherwise."""

import pytest
from django.test import Client
from django.urls import reverse

from jobs.testing import work_off
from signupdemo.models import OutboxMessage, ScheduledEmail

pytestmark = pytest.mark.django_db


def site_urls():
    return sorted(set(ScheduledEmail.objects.values_list("site_url", flat=True)))


def test_signup_and_resend_take_the_request_origin(sign_up, settings, outbox_mailer):
    settings.SITE_URL = ""
    settings.ALLOWED_HOSTS = ["demo.example.net"]
    browser = Client(headers={"host": "demo.example.net:8001"})
    assert sign_up(client=browser).status_code == 302
    assert site_urls() == ["http://demo.example.net:8001"]

    work_off()
    assert "http://demo.example.net:8001/confirm/" in OutboxMessage.objects.get().body_text

    # A fresh link asked for at another of the site's addresses links there.
    settings.ALLOWED_HOSTS = ["demo.example.net", "www.example.net"]
    Client(headers={"host": "www.example.net"}).post(
        reverse("resend"), {"email": "ada@example.com"}
    )
    assert site_urls() == ["http://demo.example.net:8001", "http://www.example.net"]


def test_site_url_overrides_the_request(sign_up, settings):
    settings.SITE_URL = "https://www.example.org"
    sign_up()
    assert site_urls() == ["https://www.example.org"]


def test_a_refused_host_queues_nothing(sign_up, settings):
    settings.SITE_URL = ""
    settings.ALLOWED_HOSTS = ["demo.example.net"]
    response = sign_up(client=Client(headers={"host": "evil.example.com"}))
    assert response.status_code == 400
    assert not ScheduledEmail.objects.exists()
