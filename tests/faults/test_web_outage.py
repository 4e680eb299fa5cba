"""Fault 3, the web side: a database outage gets a 503 page, and the site recovers by itself.

The real web process (the Procfile's gunicorn) talks to PostgreSQL through a
TCP proxy; cutting the proxy is the outage, restoring it the recovery. No
process is restarted in between.
"""

import time
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection
from django.urls import reverse

from .tcpproxy import TcpProxy
from .web import ARTIFACTS, Visitor, running_web

pytestmark = pytest.mark.faults

User = get_user_model()
PASSWORD = "correct horse battery staple"


@contextmanager
def database_unreachable():
    """Every query of this process fails as it does while the server is down."""

    def refuse(execute, sql, params, many, context):
        raise OperationalError("connection to server failed: Connection refused")

    with connection.execute_wrapper(refuse):
        yield


def assert_outage_page(response):
    assert response.status_code == 503
    body = response.content.decode()
    assert "Back in a moment" in body
    assert "Traceback" not in body
    assert int(response["Retry-After"]) > 0
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["home", "signup", "login", "resend", "watch"])
def test_a_page_that_cannot_query_the_database_answers_503(client, page, caplog):
    # A session to load: an anonymous visitor without one needs no database for most pages.
    client.force_login(User.objects.create_user("ada@example.com", "ada@example.com", PASSWORD))
    with database_unreachable():
        response = client.get(reverse(page))
    assert_outage_page(response)
    assert f"database_unavailable method=GET path={reverse(page)}" in caplog.text
    assert [r.levelname for r in caplog.records if r.name == "signupdemo.middleware"] == ["ERROR"]


@pytest.mark.django_db
def test_a_form_posted_during_an_outage_answers_503_and_saves_nothing(client):
    data = {"email": "ada@example.com", "name": "Ada", "password": PASSWORD}
    with database_unreachable():
        response = client.post(reverse("signup"), data)
    assert_outage_page(response)
    assert not User.objects.exists()


@pytest.mark.django_db
def test_other_errors_are_not_mistaken_for_an_outage(client, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug, not an outage")

    monkeypatch.setattr("signupdemo.views.describe_delay", broken)
    with pytest.raises(ValueError):
        client.get(reverse("home"))


# -- the real web process behind a proxy it can lose ------------------------------------


def url_through(proxy: TcpProxy, database_url: str) -> str:
    parts = urlsplit(database_url)
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = f"{netloc[0]}@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}{proxy.host}:{proxy.port}"))


def signup_data(email: str, token: str) -> dict:
    return {"email": email, "name": "Ada", "password": PASSWORD, "csrfmiddlewaretoken": token}


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: the outage is a TCP proxy cut in front of the PostgreSQL server",
)
def test_web_process_answers_503_while_postgresql_is_away_and_recovers_by_itself(
    subprocess_env,
):
    database = connection.settings_dict
    upstream = (database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432))
    logs = ARTIFACTS / "web_outage"
    with (
        TcpProxy(upstream) as proxy,
        running_web(
            subprocess_env,
            logs,
            DATABASE_URL=url_through(proxy, subprocess_env["DATABASE_URL"]),
            WEB_CONCURRENCY="1",
            GUNICORN_THREADS="2",
        ) as web,
    ):
        visitor = Visitor(web.url)
        before = visitor.post_form(
            "/signup/", {"email": "before@example.com", "name": "Ada", "password": PASSWORD}
        )
        assert before.status == 302, before.body
        assert visitor.get("/watch/").status == 200
        token = next(cookie.value for cookie in visitor.cookies if cookie.name == "csrftoken")

        proxy.cut()
        outage = []
        for _ in range(3):  # more requests than threads: every thread's connection is dead
            outage += [
                ("GET /", visitor.get("/")),
                ("GET /signup/", visitor.get("/signup/")),
                ("GET /watch/", visitor.get("/watch/")),
                (
                    "POST /signup/",
                    visitor.request("POST", "/signup/", signup_data("during@example.com", token)),
                ),
            ]
        for what, response in outage:
            assert response.status == 503, f"{what}: {response.status}\n{response.body[:2000]}"
            assert "Back in a moment" in response.body, what
            assert "Traceback" not in response.body, what
            assert int(response.headers["retry-after"]) > 0, what

        proxy.restore()
        restored_at = time.monotonic()
        home = visitor.get("/")
        recovery = time.monotonic() - restored_at
        assert home.status == 200, home.body[:2000]
        after = visitor.request("POST", "/signup/", signup_data("after@example.com", token))
        assert after.status == 302, after.body[:2000]
        assert visitor.get("/watch/").status == 200
        assert web.popen.poll() is None, "the web process must not need a restart"
        print(f"\nweb outage: first request after restore answered in {recovery * 1000:.0f} ms")
        status = web.stop()

    log = web.output
    assert status == 0, log[-4000:]
    assert log.count("Booting worker") == 1, "a gunicorn worker was replaced:\n" + log[-4000:]
    assert "database_unavailable" in log
    assert "Traceback" not in log, log[-4000:]
    assert "Internal Server Error" not in log, log[-4000:]
    assert set(User.objects.values_list("email", flat=True)) == {
        "before@example.com",
        "after@example.com",
    }
