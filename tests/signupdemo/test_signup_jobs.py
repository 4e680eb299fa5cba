"""What a signup puts in the queue: two emails, at the right times, atomically."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from jobs.models import Job
from signupdemo import signup
from signupdemo.models import ScheduledEmail

User = get_user_model()
pytestmark = pytest.mark.django_db

NOW = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
SITE = "https://signup.example.org"


@time_machine.travel(NOW, tick=False)
def test_signup_queues_confirmation_now_and_reminder_after_the_delay(sign_up, settings):
    settings.REMINDER_DELAY = timedelta(minutes=2)
    sign_up()
    user = User.objects.get()

    confirmation, reminder = ScheduledEmail.objects.filter(user=user).order_by("run_at")
    assert (confirmation.kind, reminder.kind) == ("confirmation", "reminder")
    assert confirmation.run_at == NOW
    assert reminder.run_at == NOW + timedelta(minutes=2)
    assert {confirmation.state, reminder.state} == {"queued"}

    assert confirmation.job.run_at == NOW
    assert reminder.job.run_at == NOW + timedelta(minutes=2)
    assert {confirmation.job.queue, reminder.job.queue} == {"emails"}
    assert (confirmation.job.status, reminder.job.status) == ("ready", "scheduled")
    # Someone is waiting for the confirmation; higher runs first.
    assert confirmation.job.priority > reminder.job.priority
    assert confirmation.job.name.endswith("send_confirmation")
    assert reminder.job.name.endswith("send_reminder")


def test_rolled_back_signup_leaves_no_user_and_no_jobs():
    with pytest.raises(RuntimeError), transaction.atomic():
        signup.sign_up(email="ada@example.com", name="Ada", password="x", site_url=SITE)
        assert Job.objects.count() == 2
        raise RuntimeError("the request failed after signing up")

    assert not User.objects.exists()
    assert not ScheduledEmail.objects.exists()
    assert not Job.objects.exists()


def test_signup_that_loses_a_race_for_the_address_queues_nothing():
    User.objects.create_user("ada@example.com", "ada@example.com", "x")
    with pytest.raises(IntegrityError):
        signup.sign_up(email="ada@example.com", name="Ada", password="x", site_url=SITE)
    assert not Job.objects.exists()
    assert not ScheduledEmail.objects.exists()
