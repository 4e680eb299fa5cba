"""The public API: delay(), handle_asynchronously, enqueue(), Mailer."""

import inspect
from datetime import datetime, timedelta

import pytest
import time_machine
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from jobs import Mailer, delay, enqueue, enqueue_many, handle_asynchronously
from jobs.models import Job
from jobs.testing import work_off
from tests.testapp import jobs as targets
from tests.testapp.models import CatCircle, Event, Photo

pytestmark = pytest.mark.django_db


def test_delay_a_model_method():
    photo = Photo.objects.create(title="cat")
    job = delay(photo).upload()
    assert isinstance(job, Job) and job.pk
    assert (job.name, job.queue, job.priority, job.status) == (
        "Photo.upload",
        "default",
        0,
        "ready",
    )
    assert work_off().succeeded == 1
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.result == {"uploaded": photo.pk, "size": 1}


def test_delay_with_options_and_arguments():
    photo = Photo.objects.create(title="cat")
    when = timezone.now() + timedelta(hours=1)
    job = delay(photo, priority=10, run_at=when, queue="media").upload(size=2)
    assert (job.priority, job.run_at, job.queue) == (10, when, "media")
    assert work_off().outcomes == ()  # not due yet
    with time_machine.travel(when + timedelta(seconds=1)):
        assert work_off().succeeded == 1
    assert Event.objects.get().data == {"photo": photo.pk, "size": 2}


def test_run_at_may_be_a_timedelta():
    with time_machine.travel("2026-01-01 00:00Z", tick=False):
        job = delay(targets.noop, run_at=timedelta(minutes=5))()
        assert job.run_at == timezone.now() + timedelta(minutes=5)


def test_jobs_due_later_are_scheduled_the_others_ready():
    assert delay(targets.noop)().status == "ready"
    assert delay(targets.noop, run_at=timedelta(seconds=1))().status == "scheduled"
    assert delay(targets.noop, run_at=timezone.now() - timedelta(days=1))().status == "ready"
    # The enqueue hook runs first: its run_at decides, row by row.
    assert enqueue(targets.PostponedJob()).status == "scheduled"
    jobs = enqueue_many([targets.PostponedJob(), targets.LimitedJob()])
    assert [job.status for job in jobs] == ["scheduled", "ready"]
    assert [Job.objects.get(pk=job.pk).status for job in jobs] == ["scheduled", "ready"]


def test_delay_a_classmethod_and_a_function():
    delay(Photo).cleanup(30)
    delay(targets.record)("hello", who="world")
    assert work_off().succeeded == 2
    assert Event.names() == ["cleanup", "hello"]
    assert Event.objects.get(name="hello").data == {"who": "world"}


def test_delay_a_plain_object_stores_its_state():
    job = delay(targets.NewsletterJob("news", ["a@example.com"])).perform()
    assert job.name == "NewsletterJob.perform"
    assert work_off().succeeded == 1
    assert Event.objects.get(name="perform").data == {"text": "news", "emails": ["a@example.com"]}


@pytest.mark.parametrize(
    ("make_call", "error", "message"),
    [
        (lambda p: delay(p).uplod(), AttributeError, "Photo has no method 'uplod'"),
        (lambda p: delay(p)._meta, AttributeError, "private method"),
        (lambda p: delay(Photo(title="x")).upload(), ValueError, "unsaved Photo"),
        (lambda p: delay(lambda: 1)(), TypeError, "lambdas cannot be delayed"),
        (lambda p: delay(p).upload(object()), TypeError, "object values cannot be stored"),
        (
            lambda p: delay(p).upload(size=2, colour="red"),
            TypeError,
            "unexpected keyword argument 'colour'",
        ),
        (lambda p: delay(Photo).upload(), TypeError, "is an instance method"),
        (
            lambda p: delay(EmailMessage("s", "b", to=["a@b.c"])).send(),
            TypeError,
            "built message cannot be delayed",
        ),
        (lambda p: delay(p, priority="high").upload(), ValueError, "priority must be an integer"),
        (lambda p: delay(p, queue="").upload(), ValueError, "queue must be a non-empty string"),
        (
            lambda p: delay(p, run_at=timezone.now().replace(tzinfo=None)).upload(),
            ValueError,
            "aware datetime",
        ),
        (lambda p: delay(print)("x"), TypeError, "outside the installed apps"),
        (lambda p: delay(inspect.getmembers)(p), TypeError, "outside the installed apps"),
    ],
)
def test_bad_calls_fail_at_call_time_naming_the_culprit(make_call, error, message):
    photo = Photo.objects.create(title="cat")
    with pytest.raises(error, match=message):
        make_call(photo)
    assert Job.objects.count() == 0


def test_nested_functions_are_refused():
    def nested():
        pass

    with pytest.raises(TypeError, match="not defined at module level"):
        delay(nested)()


def test_handle_asynchronously_methods():
    circle = CatCircle.objects.create(name="hatters")
    job = circle.flip_hats(3)
    assert isinstance(job, Job) and job.name == "CatCircle.flip_hats"
    circle.refresh_from_db()
    assert circle.hats_flipped == 0  # only enqueued
    work_off()
    circle.refresh_from_db()
    assert circle.hats_flipped == 3  # ran once, not re-enqueued by the worker
    assert Job.objects.filter(status="ready").count() == 0


def test_handle_asynchronously_now_runs_synchronously():
    circle = CatCircle.objects.create(name="hatters")
    assert circle.flip_hats.now(2) is None
    circle.refresh_from_db()
    assert circle.hats_flipped == 2
    assert Job.objects.count() == 0


def test_handle_asynchronously_options_are_evaluated_per_call():
    circle = CatCircle.objects.create(name="hatters")
    with time_machine.travel("2026-03-01 12:00Z", tick=False):
        reminder = circle.daily_reminder()
        assert reminder.run_at == timezone.now() + timedelta(days=1)
    urgent = circle.of_utmost_urgency()
    assert (urgent.priority, urgent.queue) == (100, "urgent")
    assert circle.per_circle().queue == f"circle-{circle.pk}"  # callable given the instance


def test_handle_asynchronously_preserves_name_docstring_and_signature():
    circle = CatCircle.objects.create(name="hatters")
    for wrapped in (CatCircle.flip_hats, circle.flip_hats):
        assert wrapped.__name__ == "flip_hats"
        assert wrapped.__doc__ == "Flip every cat's hat."
    assert str(inspect.signature(circle.flip_hats)) == "(times=1)"
    assert str(inspect.signature(CatCircle.flip_hats)) == "(self, times=1)"
    assert str(inspect.signature(targets.build_report)) == "(name, *, pages=1)"
    assert targets.build_report.__doc__ == "Build a report."


def test_handle_asynchronously_module_level_function():
    job = targets.build_report("q3", pages=4)
    assert (job.queue, job.name) == ("reports", "tests.testapp.jobs.build_report")
    assert work_off().succeeded == 1
    assert Event.objects.get().data == {"report": "q3", "pages": 4}
    assert targets.build_report.now("now", pages=1) == {"report": "now", "pages": 1}


def test_handle_asynchronously_checks_arguments_at_call_time():
    circle = CatCircle.objects.create(name="hatters")
    with pytest.raises(TypeError, match="too many positional arguments"):
        circle.flip_hats(1, 2)
    with pytest.raises(TypeError, match="decorates functions"):
        handle_asynchronously(42)


def test_enqueue_a_job_object_with_hooks():
    job = enqueue(targets.NewsletterJob("hello", ["a@example.com", "b@example.com"]), priority=5)
    assert (job.name, job.priority) == ("NewsletterJob", 5)
    assert Event.names() == ["hook:enqueue"]
    work_off()
    assert Event.names() == [
        "hook:enqueue",
        "hook:before",
        "perform",
        "hook:success",
        "hook:after",
    ]
    job.refresh_from_db()
    assert job.result == 2


def test_enqueue_reads_the_job_objects_options():
    job = enqueue(targets.LimitedJob())
    assert (job.queue, job.max_attempts, job.name) == ("limited", 2, "Limited job")
    assert enqueue(targets.SlowJob()).max_run_time == 1
    assert enqueue(targets.LimitedJob(), queue="other").queue == "other"


def test_enqueue_refuses_objects_without_perform():
    with pytest.raises(TypeError, match="NotAJob: it has no perform"):
        enqueue(targets.NotAJob())


def test_enqueue_many_writes_one_insert(django_assert_max_num_queries):
    objects = [targets.NewsletterJob(f"n{i}", []) for i in range(50)]
    Event.objects.all().delete()
    with django_assert_max_num_queries(60):  # 50 enqueue hooks write Events
        jobs = enqueue_many(objects, queue="bulk")
    assert len(jobs) == 50 and all(job.pk for job in jobs)
    assert Job.objects.filter(queue="bulk").count() == 50


def test_enqueue_many_stores_each_rows_own_options():
    when = timezone.now() + timedelta(minutes=3)
    jobs = enqueue_many([targets.LimitedJob(), targets.NewsletterJob("n", ["a@b.c"])], run_at=when)
    for returned in jobs:
        stored = Job.objects.get(pk=returned.pk)
        for field in ("name", "queue", "priority", "payload", "max_attempts", "status", "run_at"):
            assert getattr(stored, field) == getattr(returned, field), field
        assert (stored.created_at, stored.errors, stored.attempts) == (returned.created_at, [], 0)
    assert [(j.queue, j.max_attempts) for j in jobs] == [("limited", 2), ("default", None)]
    assert enqueue_many([]) == []


def test_enqueue_many_keeps_every_value_exactly():
    """Rows travel to the database as one JSON document: text, numbers,
    nested payloads and times with another offset must come back unchanged."""
    from zoneinfo import ZoneInfo

    when = datetime(2031, 3, 4, 5, 6, 7, 891011, tzinfo=ZoneInfo("Asia/Kolkata"))
    text = "quotes \" ' back\\slash, nul-free unicode: café ☕ 😀, newline\n"
    objects = [targets.NewsletterJob(text, [f"{n}@example.com"]) for n in range(3)]
    jobs = enqueue_many(objects, run_at=when, priority=-32768, queue="q" * 100)
    for returned in jobs:
        stored = Job.objects.get(pk=returned.pk)
        assert stored.payload == returned.payload
        assert stored.payload["job"]["state"]["text"] == text
        assert (stored.run_at, stored.priority, stored.queue) == (when, -32768, "q" * 100)
        assert stored.status == "scheduled"
    assert [Job.objects.get(pk=j.pk).payload["job"]["state"]["emails"] for j in jobs] == [
        ["0@example.com"],
        ["1@example.com"],
        ["2@example.com"],
    ]


def test_enqueue_is_atomic_with_the_callers_transaction():
    photo = Photo.objects.create(title="cat")
    with pytest.raises(RuntimeError), transaction.atomic():
        delay(photo).upload()
        raise RuntimeError("roll back")
    assert Job.objects.count() == 0


class TestMailer:
    def test_calling_a_mailer_method_builds_without_sending(self, mailoutbox):
        message = targets.WelcomeMailer().welcome("Ada", "ada@example.com")
        assert message.subject == "Welcome, Ada"
        assert message.alternatives[0].mimetype == "text/html"
        assert mailoutbox == []

    def test_delayed_mailer_builds_and_sends_in_the_worker(self, mailoutbox):
        job = delay(targets.WelcomeMailer, queue="emails").welcome("Ada", "ada@example.com")
        assert job.name == "WelcomeMailer.welcome"
        assert mailoutbox == []
        work_off()
        [sent] = mailoutbox
        assert (sent.subject, sent.to) == ("Welcome, Ada", ["ada@example.com"])
        job.refresh_from_db()
        assert job.result == 1

    def test_a_mailer_may_decide_to_send_nothing(self):
        delay(targets.WelcomeMailer).nothing()
        assert work_off().succeeded == 1

    def test_mailer_class_is_a_plain_base(self):
        assert issubclass(targets.WelcomeMailer, Mailer)
        assert targets.WelcomeMailer.mailer == "default"


class TestDelayJobsOff:
    @pytest.fixture(autouse=True)
    def _inline(self, settings):
        settings.JOBS = {**settings.JOBS, "DELAY_JOBS": False}

    def test_runs_inline_with_hooks_and_saves_the_success(self):
        job = enqueue(targets.NewsletterJob("now", ["x@example.com"]))
        assert job.status == Job.Status.SUCCEEDED and job.result == 1
        assert Event.names() == [
            "hook:enqueue",
            "hook:before",
            "perform",
            "hook:success",
            "hook:after",
        ]
        assert list(Job.objects.values_list("pk", "status")) == [(job.pk, "succeeded")]

    def test_inline_errors_propagate_after_the_error_hooks(self):
        with pytest.raises(ValueError, match="not yet"):
            enqueue(targets.NewsletterJob("now", [], fail_times=1))
        assert Event.names()[-3:] == ["hook:error", "hook:failure", "hook:after"]
        assert Job.objects.count() == 0

    def test_delay_runs_inline_through_the_json_round_trip(self):
        circle = CatCircle.objects.create(name="c")
        circle.flip_hats(5)
        circle.refresh_from_db()
        assert circle.hats_flipped == 5
        with pytest.raises(TypeError, match="cannot be stored"):
            delay(targets.record)("x", thing=object())


def test_oversized_payloads_are_refused_at_enqueue(settings):
    settings.JOBS = {**settings.JOBS, "MAX_PAYLOAD_BYTES": 10_000}
    with pytest.raises(ValueError, match=r"take 20,\d+ bytes as JSON, over .* \(10,000\)"):
        delay(targets.record)("big", blob="x" * 20_000)
    assert Job.objects.count() == 0
