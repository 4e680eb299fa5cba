"""The worker's side: confirmation sent, reminder sent only to unconfirmed accounts."""

import logging
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model

from jobs.models import Job
from jobs.testing import work_off
from signupdemo import signup
from signupdemo.models import ScheduledEmail

User = get_user_model()
pytestmark = pytest.mark.django_db


@pytest.fixture
def user(settings):
    settings.REMINDER_DELAY = timedelta(hours=1)
    return signup.sign_up(
        email="ada@example.com", name="Ada", password="x", site_url="https://signup.example.org"
    )


def emails(user):
    return {e.kind: e for e in ScheduledEmail.objects.filter(user=user)}


def test_worker_sends_the_confirmation_now_and_holds_the_reminder(user, mailoutbox):
    result = work_off()

    assert (result.succeeded, result.failed) == (1, 0)
    assert [m.subject for m in mailoutbox] == ["Confirm your email address"]
    assert mailoutbox[0].to == ["ada@example.com"]
    sent = emails(user)
    assert sent["confirmation"].state == "sent"
    assert sent["confirmation"].progress == "sent"
    assert sent["confirmation"].finished_at is not None
    assert sent["reminder"].progress == "queued"


def test_reminder_goes_to_an_account_still_unconfirmed(user, mailoutbox):
    work_off()
    with time_machine.travel(timedelta(hours=1, seconds=1)):
        assert work_off().succeeded == 1
    assert [m.subject for m in mailoutbox][-1] == "Reminder: confirm your email address"
    assert emails(user)["reminder"].state == "sent"


def test_reminder_is_skipped_and_logged_once_confirmed(user, mailoutbox, caplog):
    work_off()
    signup.confirm(user)
    with time_machine.travel(timedelta(hours=1, seconds=1)), caplog.at_level(logging.INFO):
        assert work_off().succeeded == 1

    assert len(mailoutbox) == 1  # only the confirmation
    reminder = emails(user)["reminder"]
    assert (reminder.state, reminder.progress, reminder.note) == (
        "skipped",
        "skipped",
        "already confirmed",
    )
    assert any(
        "kind=reminder outcome=skipped reason=already-confirmed" in r.getMessage()
        for r in caplog.records
    )


def test_record_outlives_the_pruned_job(user, mailoutbox):
    work_off()
    confirmation = emails(user)["confirmation"]
    Job.objects.filter(pk=confirmation.job_id).delete()  # what retention pruning does
    confirmation.refresh_from_db()
    assert confirmation.job is None
    assert confirmation.progress == "sent"


def test_email_for_a_deleted_account_is_dropped_quietly(user, mailoutbox):
    user.delete()
    result = work_off()
    assert (result.succeeded, result.failed) == (1, 0)
    assert mailoutbox == []


def test_a_failing_send_is_retried_and_shown_as_retrying(user, settings):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 1},
        }
    }
    result = work_off()
    assert result.failed == 1
    confirmation = emails(user)["confirmation"]
    assert confirmation.state == "queued"
    assert confirmation.progress == "retrying"
    assert confirmation.next_attempt_at > confirmation.run_at
