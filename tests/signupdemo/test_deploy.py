"""Production settings and the Heroku template files."""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from jobs.models import Job
from signupdemo.models import OutboxMessage, ScheduledEmail

ROOT = Path(__file__).resolve().parents[2]


def production_env(**extra):
    """A Heroku dyno's environment, as the Deploy button leaves it: no SITE_URL."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PYTEST_", "EMAIL_", "MAILGUN_"))
        and k not in {"CI", "SITE_URL"}
    }
    env.update(
        DYNO="web.1",
        DJANGO_SETTINGS_MODULE="signupdemo.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48)[:50],
        DATABASE_URL="postgres://user:password@db.example.com:5432/signupdemo",
    )
    env.update(extra)
    return env


def run_manage(*args, env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_in_production():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_is_clean_with_smtp_too():
    env = production_env(EMAIL_URL="smtp://user:secret@smtp.example.com:587")
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_is_clean_with_an_https_site_url():
    env = production_env(SITE_URL="https://www.example.com")
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("site_url", ["http://localhost:8000", "http://www.example.com"])
def test_check_deploy_warns_only_about_a_site_url_visitors_cannot_use(site_url):
    result = run_manage("check", "--deploy", env=production_env(SITE_URL=site_url))
    assert "signupdemo.W001" in result.stderr + result.stdout


# Run in a production process (DYNO set, signupdemo.settings): Django's test
# client speaks WSGI to the app there, with the headers Heroku's router sends.
PRODUCTION_SIGNUPS = """
from django.test import Client

for email, host in [
    ("ada@example.com", "my-app-1234.herokuapp.com"),
    ("eve@example.com", "evil.example.com"),
]:
    response = Client().post(
        "/signup/",
        {"email": email, "name": "Someone", "password": "correct horse battery staple"},
        headers={"host": host, "x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.9"},
    )
    print(f"host={host} status={response.status_code} location={response.get('Location', '')}")
"""


@pytest.mark.django_db(transaction=True)
def test_without_site_url_emails_link_to_the_origin_the_visitor_used(subprocess_env):
    # production_env drops CI (which turns Heroku's settings off), so not the
    # `manage` fixture, whose environment keeps it.
    env = production_env(DATABASE_URL=subprocess_env["DATABASE_URL"])
    signups = run_manage("shell", "-c", PRODUCTION_SIGNUPS, env=env)
    assert signups.returncode == 0, signups.stdout + signups.stderr
    assert "host=my-app-1234.herokuapp.com status=302 location=/watch/" in signups.stdout
    # A Host that ALLOWED_HOSTS refuses: 400, before any view could queue a thing.
    assert "host=evil.example.com status=400" in signups.stdout
    assert list(get_user_model().objects.values_list("email", flat=True)) == ["ada@example.com"]
    assert Job.objects.count() == 2  # Ada's confirmation and reminder
    assert set(ScheduledEmail.objects.values_list("site_url", flat=True)) == {
        "https://my-app-1234.herokuapp.com"
    }

    worker = run_manage("jobs", "workoff", env=env)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    message = OutboxMessage.objects.get()
    links = re.findall(r"https?://\S+", message.body_text)
    links += re.findall(r'href="([^"]*)"', message.body_html)
    assert any("/confirm/" in link for link in links)
    assert [
        link for link in links if not link.startswith("https://my-app-1234.herokuapp.com/")
    ] == []


def test_production_refuses_to_start_without_a_secret_key():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_procfile_runs_gunicorn_the_worker_and_migrations():
    lines = dict(
        line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    assert lines == {
        "web": "gunicorn signupdemo.wsgi --config gunicorn.conf.py",
        "worker": "python manage.py jobs work",
        "release": "python manage.py migrate --no-input",
    }


def test_gunicorn_gives_up_before_heroku_does(monkeypatch):
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    import runpy

    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["bind"] == ["0.0.0.0:8123"]
    assert config["workers"] == 3
    assert config["worker_class"] == "gthread"
    assert config["timeout"] < 30  # Heroku's router timeout (H12)
    assert config["graceful_timeout"] < 30  # SIGKILL 30 s after SIGTERM
    assert config["keepalive"] > 90  # Router 2.0 idle keep-alive
    assert config["accesslog"] == "-"


def test_app_json_describes_a_web_and_a_worker_dyno():
    app = json.loads((ROOT / "app.json").read_text())
    assert app["env"]["DJANGO_SECRET_KEY"]["generator"] == "secret"
    assert {"REMINDER_DELAY", "EMAIL_URL", "DJANGO_SUPERUSER_EMAIL"} <= set(app["env"])
    assert app["env"]["EMAIL_URL"]["required"] is False
    assert {"plan": "heroku-postgresql:essential-0"} in app["addons"]
    assert app["formation"]["web"]["quantity"] == app["formation"]["worker"]["quantity"] == 1
    assert "create_staff_user" in app["scripts"]["postdeploy"]
    assert "pytest" in app["environments"]["test"]["scripts"]["test"]


def test_python_version_file_and_no_runtime_txt():
    assert (ROOT / ".python-version").read_text().strip() == "3.13"
    assert not (ROOT / "runtime.txt").exists()


@pytest.mark.django_db
def test_create_staff_user_from_the_environment(monkeypatch):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("create_staff_user")  # no variables: nothing, and no error
    assert not get_user_model().objects.exists()

    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "Admin@Example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long staff password")
    call_command("create_staff_user")
    call_command("create_staff_user")  # idempotent
    admin = get_user_model().objects.get()
    assert (admin.username, admin.is_staff, admin.is_superuser) == ("admin@example.com", True, True)
    assert admin.check_password("a long staff password")


def test_the_deploy_button_names_the_repository_app_json_names():
    readme = (ROOT / "README.md").read_text()
    [template] = re.findall(r"\]\(https://www\.heroku\.com/deploy\?template=([^)\s]+)\)", readme)
    assert template == json.loads((ROOT / "app.json").read_text())["repository"]


def test_heroku_accepts_its_own_domain_and_listed_custom_domains_only():
    script = "from django.conf import settings; print(settings.ALLOWED_HOSTS)"
    result = run_manage("shell", "--no-imports", "-c", script, env=production_env())
    assert result.stdout.strip() == "['.herokuapp.com']", result.stderr
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        script,
        env=production_env(DJANGO_ALLOWED_HOSTS="www.example.com"),
    )
    assert result.stdout.strip() == "['.herokuapp.com', 'www.example.com']", result.stderr


def test_the_readme_draws_the_flow_once():
    readme = (ROOT / "README.md").read_text()
    [diagram] = re.findall(r"```mermaid\n(.*?)```", readme, re.DOTALL)
    # Each step in order: browser, web, database, worker, mail, watch page.
    edges = re.findall(r"^\s*(\w+) -- .* --> (\w+)$", diagram, re.MULTILINE)
    assert edges == [
        ("browser", "web"),
        ("web", "db"),
        ("db", "worker"),
        ("worker", "mail"),
        ("mail", "watch"),
    ]
    assert "one transaction" in diagram and "NOTIFY" in diagram and "claims" in diagram
