"""Production settings and the Heroku template files."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def production_env(**extra):
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
        SITE_URL="https://signupdemo.example.com",
        **extra,
    )
    return env


def manage(*args, env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_in_production():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_is_clean_with_smtp_too():
    env = production_env(EMAIL_URL="smtp://user:secret@smtp.example.com:587")
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_warns_about_localhost_links():
    env = production_env()
    del env["SITE_URL"]
    result = manage("check", "--deploy", env=env)
    assert "signupdemo.W001" in result.stderr + result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]
    result = manage("check", env=env)
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
