"""Job targets for unique keys, concurrency limits and cancellation."""

import os
import time

from django.tasks import task

from jobs import cancel_requested, handle_asynchronously, limits

from .models import Event


def runs(tag, seconds=0.0):
    """Records when it starts and ends (wall clock, for overlap checks)."""
    Event.objects.create(name="start", data={"tag": tag, "at": time.time(), "pid": os.getpid()})
    time.sleep(seconds)
    Event.objects.create(name="end", data={"tag": tag, "at": time.time(), "pid": os.getpid()})


def stops_when_asked(limit=60.0):
    """Cooperative: looks for a cancellation request between steps."""
    Event.objects.create(name="cooperative_started")
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if cancel_requested():
            Event.objects.create(name="cooperative_saw_request")
            return "stopped early"
        time.sleep(0.02)
    return "ran to the end"


def ignores_requests(limit=60.0):
    """Never looks: only an interruption stops it."""
    Event.objects.create(name="stubborn_started")
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(0.02)
    Event.objects.create(name="stubborn_finished")


@limits(unique_key=lambda user_id: f"welcome:{user_id}")
def welcome(user_id):
    Event.objects.create(name="welcome", data={"user": user_id})


@limits(concurrency_key="smtp", concurrency_limit=2)
def send_through_smtp(n):
    Event.objects.create(name="smtp", data={"n": n})


@task
@limits(unique_key=lambda account: f"sync:{account}", concurrency_key="sync")
def sync_account(account):
    Event.objects.create(name="sync", data={"account": account})


class Account:
    def __init__(self, number):
        self.number = number

    @handle_asynchronously(
        unique_key=lambda self, full=False: f"refresh:{self.number}:{full}",
        concurrency_key=lambda self, full=False: f"account:{self.number}",
    )
    def refresh(self, full=False):
        Event.objects.create(name="refresh", data={"account": self.number, "full": full})


class ReportJob:
    """A job object whose keys are attributes and methods."""

    concurrency_limit = 3

    def __init__(self, report):
        self.report = report

    def unique_key(self):
        return f"report:{self.report}"

    def concurrency_key(self):
        return "reports"

    def perform(self):
        Event.objects.create(name="report", data={"report": self.report})
