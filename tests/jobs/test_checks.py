"""System checks report bad JOBS settings at startup."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from jobs.checks import check_jobs_setting


def _ids(settings, **jobs):
    settings.JOBS = jobs
    return {message.id for message in check_jobs_setting(None)}


def test_defaults_pass(settings):
    assert _ids(settings) == set()


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        ({"MAX_ATEMPTS": 3}, "jobs.E002"),
        ({"SLEEP_DELAY": 0}, "jobs.E003"),
        ({"SLEEP_DELAY": "5"}, "jobs.E003"),
        ({"MAX_ATTEMPTS": 0}, "jobs.E003"),
        ({"DEFAULT_PRIORITY": 40000}, "jobs.E003"),
        ({"DEFAULT_QUEUE": ""}, "jobs.E003"),
        ({"KEEP_SUCCEEDED": "1 day"}, "jobs.E003"),
        ({"DELAY_JOBS": "no"}, "jobs.E003"),
        ({"ALLOWED_MODULES": [3]}, "jobs.E003"),
        ({"HEARTBEAT_INTERVAL": 30, "HEARTBEAT_TIMEOUT": 40}, "jobs.E004"),
    ],
)
def test_bad_settings_are_reported(settings, jobs, expected):
    assert expected in _ids(settings, **jobs)


def test_jobs_must_be_a_dict(settings):
    settings.JOBS = ["MAX_ATTEMPTS"]
    assert "jobs.E001" in {m.id for m in check_jobs_setting(None)}


def test_seconds_may_be_given_as_numbers(settings):
    from jobs.conf import jobs_settings

    settings.JOBS = {"KEEP_SUCCEEDED": 60, "ALLOWED_MODULES": ["json"]}
    assert jobs_settings().KEEP_SUCCEEDED.total_seconds() == 60
    assert jobs_settings().ALLOWED_MODULES == ("json",)


@pytest.fixture
def sqlite_without_immediate(monkeypatch):
    if connection.vendor != "sqlite":
        pytest.skip("jobs.W011 is about SQLite's transaction mode")
    options = connection.settings_dict.setdefault("OPTIONS", {})
    monkeypatch.delitem(options, "transaction_mode", raising=False)


@pytest.mark.django_db
def test_sqlite_without_immediate_is_reported_by_plain_check(sqlite_without_immediate):
    err = StringIO()
    call_command("check", stderr=err, stdout=StringIO())
    assert "jobs.W011" in err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_sqlite_without_immediate_is_logged_when_a_worker_starts(sqlite_without_immediate, caplog):
    with pytest.raises(SystemExit) as exited:
        call_command("jobs", "workoff")
    assert exited.value.code == 0
    assert any(
        record.name == "jobs" and record.getMessage().startswith("jobs.W011: SQLite without")
        for record in caplog.records
    )
