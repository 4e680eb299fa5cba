"""The watch and home pages say why emails wait: no worker, a paused queue, a failed try."""

import socket
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from jobs.conf import jobs_settings
from jobs.models import PausedQueue, Worker
from jobs.testing import work_off

pytestmark = pytest.mark.django_db


def start_worker(name="web-1.worker", queues=()):
    """A worker's heartbeat row, as `jobs work` writes it."""
    return Worker.objects.create(
        name=name, hostname="dyno", pid=4242, queues=list(queues), last_heartbeat_at=timezone.now()
    )


def notices(client):
    return [notice["kind"] for notice in client.get(reverse("watch_status")).json()["notices"]]


def test_no_worker_is_said_plainly_with_what_to_do(client, sign_up):
    sign_up()
    page = client.get(reverse("watch")).content.decode()
    assert "No worker is running, so no email is being sent." in page
    assert "<code>heroku ps:scale worker=1</code>" in page
    assert "<code>make run</code>" in page

    [notice] = client.get(reverse("watch_status")).json()["notices"]
    assert notice["kind"] == "no-worker"
    commands = [part["text"] for part in notice["parts"] if part["code"]]
    assert commands == ["heroku ps:scale worker=1", "heroku config:set JOBS_IN_WEB=1", "make run"]


def test_the_notice_follows_the_heartbeat(client, sign_up):
    sign_up()
    start_worker()
    assert notices(client) == []

    # Silent past the timeout: presumed dead, as the queue itself presumes.
    timeout = timedelta(seconds=jobs_settings().HEARTBEAT_TIMEOUT)
    with time_machine.travel(timezone.now() + timeout + timedelta(seconds=1)):
        assert notices(client) == ["no-worker"]
    with time_machine.travel(timezone.now() + timeout - timedelta(seconds=1)):
        assert notices(client) == []


def test_a_worker_for_other_queues_only_does_not_count(client, sign_up):
    sign_up()
    start_worker(queues=["billing"])
    assert notices(client) == ["no-worker"]
    start_worker(name="web-2.worker", queues=["emails", "default"])
    assert notices(client) == []


def test_a_paused_emails_queue_is_said_and_unsaid_live(client, sign_up):
    sign_up()
    start_worker()
    PausedQueue.objects.create(queue="emails")
    assert notices(client) == ["paused"]
    assert "Sending email is paused." in client.get(reverse("watch")).content.decode()
    PausedQueue.objects.all().delete()
    assert notices(client) == []


def test_nothing_is_said_once_nothing_waits(client, sign_up, settings):
    sign_up()
    work_off()
    assert notices(client) == ["no-worker"]  # the reminder still waits
    with time_machine.travel(timezone.now() + settings.REMINDER_DELAY + timedelta(seconds=1)):
        work_off()
        assert notices(client) == []


def test_a_failed_send_says_when_and_why_not_the_traceback(client, sign_up, settings):
    # A mail server that refuses connections: a real failure, retried later.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 5},
        }
    }
    sign_up()
    assert work_off().failed == 1

    [confirmation, _] = client.get(reverse("watch_status")).json()["emails"]
    assert confirmation["progress"] == "retrying"
    assert confirmation["error"].startswith("ConnectionRefusedError")
    assert "\n" not in confirmation["error"]
    assert parse_datetime(confirmation["next_attempt_at"]) > timezone.now()
    page = client.get(reverse("watch")).content.decode()
    assert f"Attempt 1 failed ({confirmation['error']}); next try at" in page
    assert "Traceback" not in page


def test_home_page_says_whether_a_worker_is_running(client):
    page = client.get(reverse("home")).content.decode()
    assert "No worker is running" in page
    assert "<code>heroku ps:scale worker=1</code>" in page
    start_worker()
    page = client.get(reverse("home")).content.decode()
    assert "A worker is running" in page
    assert "ps:scale" not in page
