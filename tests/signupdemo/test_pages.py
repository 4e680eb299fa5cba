"""Every page renders, links where it should, and the error pages are ours."""

import pytest
from django.contrib.auth import get_user_model
from django.template.loader import render_to_string
from django.test import override_settings
from django.urls import reverse

User = get_user_model()
pytestmark = pytest.mark.django_db


def test_home_explains_the_demo(client, settings):
    settings.REMINDER_DELAY = __import__("datetime").timedelta(minutes=2)
    body = client.get(reverse("home")).content.decode()
    assert "same database transaction" in body
    assert "2 minutes" in body
    assert 'href="/jobs/"' in body
    assert reverse("signup") in body


def test_staff_see_admin_and_jobs_in_the_menu(client):
    staff = User.objects.create_user("s@example.com", "s@example.com", "x", is_staff=True)
    client.force_login(staff)
    body = client.get(reverse("home")).content.decode()
    assert 'href="/jobs/">Jobs dashboard' in body
    assert reverse("admin:index") in body


def test_every_page_has_a_skip_link_viewport_and_language(client):
    for name in ("home", "signup", "login", "resend"):
        body = client.get(reverse(name)).content.decode()
        assert '<html lang="en">' in body
        assert 'name="viewport"' in body
        assert 'href="#main"' in body


@override_settings(DEBUG=False)
def test_not_found_uses_the_site_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "We could not find that page" in response.content.decode()


def test_error_templates_render_standalone():
    assert "Something went wrong" in render_to_string("500.html")
    assert "not allowed" in render_to_string("403.html")
    assert "Too many requests" in render_to_string("429.html", {"retry_minutes": 5})
    assert "expired" in render_to_string("403_csrf.html")


def test_csrf_failure_uses_the_site_page(sign_up):
    from django.test import Client

    response = sign_up(client=Client(enforce_csrf_checks=True))
    assert response.status_code == 403
    assert "That form had expired" in response.content.decode()
