"""Abuse limits: per client and per address, shared through the database, with a 429 page."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from django.urls import reverse

from jobs.testing import work_off
from signupdemo import limits
from signupdemo.models import RateLimitCounter, ScheduledEmail

User = get_user_model()
pytestmark = pytest.mark.django_db


def request_from(remote_addr="203.0.113.7", forwarded=None):
    extra = {"REMOTE_ADDR": remote_addr}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().post("/signup/", **extra)


class TestClientIp:
    def test_without_a_trusted_proxy_the_header_is_ignored(self, settings):
        settings.TRUSTED_PROXY_HOPS = 0
        assert limits.client_ip(request_from(forwarded="198.51.100.1")) == "203.0.113.7"

    def test_behind_herokus_router_the_entry_it_appended_is_used(self, settings):
        settings.TRUSTED_PROXY_HOPS = 1
        request = request_from("10.1.2.3", forwarded="198.51.100.1")
        assert limits.client_ip(request) == "198.51.100.1"

    def test_a_client_cannot_choose_its_address_by_sending_the_header(self, settings):
        settings.TRUSTED_PROXY_HOPS = 1
        # The client sent "1.2.3.4"; the router appended what it really saw.
        request = request_from("10.1.2.3", forwarded="1.2.3.4, 198.51.100.1")
        assert limits.client_ip(request) == "198.51.100.1"

    def test_missing_header_falls_back_to_the_peer(self, settings):
        settings.TRUSTED_PROXY_HOPS = 1
        assert limits.client_ip(request_from("10.1.2.3")) == "10.1.2.3"

    def test_ipv6_clients_are_counted_per_slash_64(self):
        assert limits.client_key("2001:db8:1:2:aaaa::1") == limits.client_key(
            "2001:db8:1:2:bbbb::9"
        )
        assert limits.client_key("2001:db8:1:2::1") != limits.client_key("2001:db8:1:3::1")
        assert limits.client_key("::ffff:192.0.2.1") == "192.0.2.1"
        assert limits.client_key("192.0.2.1") == "192.0.2.1"


def test_counter_allows_up_to_the_limit_then_refuses_until_the_window_ends():
    limit = limits.Limit("test", 2, timedelta(hours=1))
    with time_machine.travel("2030-01-01 10:15:00+00:00", tick=False):
        assert limits.hit(limit, "k").allowed
        assert limits.hit(limit, "k").allowed
        refused = limits.hit(limit, "k")
        assert not refused.allowed
        assert refused.retry_after == 45 * 60
        assert limits.hit(limit, "other key").allowed
    with time_machine.travel("2030-01-01 11:00:01+00:00", tick=False):
        assert limits.hit(limit, "k").allowed


def test_counters_store_no_addresses_and_old_ones_are_pruned():
    limit = limits.Limit("test", 5, timedelta(hours=1))
    with time_machine.travel("2030-01-01 10:00:00+00:00"):
        limits.hit(limit, "ada@example.com")
    assert "ada" not in RateLimitCounter.objects.get().key_hash
    with time_machine.travel("2030-01-03 10:00:00+00:00"):
        limits.hit(limit, "someone@example.com")
    assert RateLimitCounter.objects.count() == 1


def test_signups_per_client_are_limited(sign_up):
    for n in range(limits.SIGNUPS_PER_CLIENT.max_count):
        assert sign_up(email=f"user{n}@example.com").status_code == 302

    response = sign_up(email="one-too-many@example.com")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many requests" in response.content.decode()
    assert not User.objects.filter(email="one-too-many@example.com").exists()


def test_another_client_is_not_affected(sign_up):
    for n in range(limits.SIGNUPS_PER_CLIENT.max_count + 1):
        sign_up(email=f"user{n}@example.com", REMOTE_ADDR="192.0.2.1")
    assert sign_up(email="fresh@example.com", REMOTE_ADDR="192.0.2.2").status_code == 302


def test_resends_to_one_address_are_limited_whoever_asks(sign_up, client):
    sign_up()  # the signup's confirmation counts against the address too
    allowed = limits.EMAILS_PER_ADDRESS.max_count - 1
    for n in range(allowed):
        work_off()  # each resend queues one only once the last has gone out
        response = client.post(
            reverse("resend"), {"email": "ada@example.com"}, REMOTE_ADDR=f"192.0.2.{n + 10}"
        )
        assert response.status_code in {200, 302}

    response = client.post(
        reverse("resend"), {"email": "ada@example.com"}, REMOTE_ADDR="192.0.2.99"
    )
    assert response.status_code == 429
    assert ScheduledEmail.objects.filter(kind="confirmation").count() == 1 + allowed


def test_resends_per_client_are_limited(client):
    for n in range(limits.RESENDS_PER_CLIENT.max_count):
        response = client.post(reverse("resend"), {"email": f"user{n}@example.com"})
        assert response.status_code == 200
    response = client.post(reverse("resend"), {"email": "another@example.com"})
    assert response.status_code == 429


def test_limit_lifts_when_the_window_has_passed(sign_up):
    with time_machine.travel("2030-01-01 10:00:00+00:00"):
        for n in range(limits.SIGNUPS_PER_CLIENT.max_count):
            sign_up(email=f"user{n}@example.com")
        assert sign_up(email="late@example.com").status_code == 429
    with time_machine.travel("2030-01-01 11:00:05+00:00"):
        assert sign_up(email="late@example.com").status_code == 302
