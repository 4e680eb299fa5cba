"""Job targets for the tests: functions, job objects with hooks, a mailer."""

import os
import time

from django.core.mail import EmailMultiAlternatives

from jobs import Mailer, handle_asynchronously

from .models import Event


def record(name, **data):
    Event.objects.create(name=name, data=data)
    return data


def fail(message="boom"):
    raise RuntimeError(message)


def sleep(seconds):
    record("sleep_started", seconds=seconds, pid=os.getpid())
    time.sleep(seconds)
    record("sleep_finished", seconds=seconds, pid=os.getpid())


def blocking_sleep():
    """Stuck in one C call: immune to the worker's interruption."""
    record("blocking_started", pid=os.getpid())
    time.sleep(3600)


def busy_forever():
    record("busy_started", pid=os.getpid())
    while True:
        time.sleep(0.05)


def kill_worker():
    record("kill_worker", pid=os.getpid())
    os._exit(9)


def noop():
    return None


@handle_asynchronously(queue="reports")
def build_report(name, *, pages=1):
    """Build a report."""
    return record("report", report=name, pages=pages)


class NewsletterJob:
    """A delayed_job-style job object: state in __dict__, every hook."""

    def __init__(self, text, emails, fail_times=0):
        self.text = text
        self.emails = emails
        self.fail_times = fail_times

    def perform(self):
        Event.objects.create(name="perform", data={"text": self.text, "emails": self.emails})
        if Event.objects.filter(name="perform").count() <= self.fail_times:
            raise ValueError("not yet")
        return len(self.emails)

    def enqueue(self, job):
        Event.objects.create(name="hook:enqueue", data={"priority": job.priority})

    def before(self, job):
        Event.objects.create(name="hook:before", data={"attempt": job.attempts})

    def after(self, job):
        Event.objects.create(name="hook:after")

    def success(self, job):
        Event.objects.create(name="hook:success")

    def error(self, job, exception):
        Event.objects.create(name="hook:error", data={"error": str(exception)})

    def failure(self, job):
        Event.objects.create(name="hook:failure")


class LimitedJob:
    max_attempts = 2
    queue_name = "limited"

    def __init__(self, reschedule_in=None):
        self.reschedule_in = reschedule_in

    def display_name(self):
        return "Limited job"

    def perform(self):
        raise RuntimeError("always")

    def failure(self, job):
        Event.objects.create(name="hook:failure", data={"attempts": job.attempts})


class CustomScheduleJob:
    max_attempts = 3

    def perform(self):
        raise RuntimeError("again")

    def reschedule_at(self, now, attempts):
        from datetime import timedelta

        return now + timedelta(minutes=attempts)


class PostponedJob:
    """Its enqueue hook moves it an hour later."""

    def perform(self):
        return None

    def enqueue(self, job):
        from datetime import timedelta

        job.run_at += timedelta(hours=1)


class SlowJob:
    max_run_time = 1

    def perform(self):
        busy_forever()


class NotAJob:
    pass


class WelcomeMailer(Mailer):
    def welcome(self, user_name, address):
        message = EmailMultiAlternatives(
            subject=f"Welcome, {user_name}",
            body=f"Hello {user_name}",
            to=[address],
        )
        message.attach_alternative(f"<p>Hello {user_name}</p>", "text/html")
        return message

    def nothing(self):
        return None


def hang_first_attempt(key):
    """Hangs on its first attempt (to be killed there); finishes on the next."""
    if Event.objects.filter(name="hang", data__key=key).exists():
        return record("finished", key=key, pid=os.getpid())
    record("hang", key=key, pid=os.getpid())
    busy_forever()


class RecordNumber:
    def __init__(self, n):
        self.n = n

    def perform(self):
        record("number", n=self.n)


class LoadJob:
    """One numbered job of a load test; the Event it records is how the test counts runs."""

    def __init__(self, n):
        self.n = n

    def perform(self):
        record("load", n=self.n)
