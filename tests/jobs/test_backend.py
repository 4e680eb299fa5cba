"""The django.tasks backend, checked against what Django documents for backends."""

from datetime import timedelta

import pytest
import time_machine
from django.tasks import TaskResultStatus, default_task_backend, task_backends
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist, TaskResultMismatch
from django.tasks.signals import task_enqueued, task_finished, task_started
from django.utils import timezone

from jobs import delay
from jobs.backends import JobsBackend
from jobs.models import Job
from jobs.testing import work_off
from tests.testapp import jobs as targets
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

LATER = "2027-06-01 12:00:00Z"


@pytest.fixture
def signals():
    received = []

    def receiver(signal_name):
        def handler(sender, task_result, **kwargs):
            received.append((signal_name, sender, task_result.status, task_result.id))

        return handler

    handlers = {
        task_enqueued: receiver("enqueued"),
        task_started: receiver("started"),
        task_finished: receiver("finished"),
    }
    for signal, handler in handlers.items():
        signal.connect(handler)
    yield received
    for signal, handler in handlers.items():
        signal.disconnect(handler)


def test_backend_capabilities():
    backend = task_backends["default"]
    assert isinstance(backend, JobsBackend)
    assert backend.supports_defer and backend.supports_async_task
    assert backend.supports_get_result and backend.supports_priority


def test_enqueue_stores_a_job_in_the_same_table():
    result = tasks.send_digest.enqueue(7)
    job = Job.objects.get(pk=int(result.id))
    assert (job.queue, job.priority, job.name) == ("emails", 50, "tests.testapp.tasks.send_digest")
    assert result.status == TaskResultStatus.READY
    assert result.enqueued_at == job.created_at
    assert (result.started_at, result.finished_at, result.last_attempted_at) == (None, None, None)
    assert (result.args, result.kwargs, result.errors, result.worker_ids) == ([7], {}, [], [])
    assert not result.is_finished
    with pytest.raises(ValueError, match="not finished"):
        _ = result.return_value


def test_status_transitions_and_fields_after_success(signals):
    result = tasks.add.enqueue(2, b=3)
    assert work_off().succeeded == 1
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 5
    assert result.started_at and result.last_attempted_at and result.finished_at
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert len(result.worker_ids) == 1 and result.attempts == 1
    assert [s[0] for s in signals] == ["enqueued", "started", "finished"]
    assert signals[1][2] == TaskResultStatus.RUNNING
    assert signals[2][2] == TaskResultStatus.SUCCESSFUL
    assert {s[1] for s in signals} == {JobsBackend}
    assert {s[3] for s in signals} == {result.id}


def test_running_status_is_visible_while_the_task_runs():
    result = tasks.with_context.enqueue()
    Job.objects.filter(pk=int(result.id)).update(
        status="running", locked_by="w1", locked_at=timezone.now(), attempts=1
    )
    running = tasks.with_context.get_result(result.id)
    assert running.status == TaskResultStatus.RUNNING and running.worker_ids == ["w1"]


def test_failure_records_errors_with_class_and_traceback(signals, settings):
    settings.JOBS = {**settings.JOBS, "MAX_ATTEMPTS": 2}
    result = tasks.explode.enqueue()
    with time_machine.travel(LATER, tick=False) as clock:
        work_off()
        result.refresh()
        assert result.status == TaskResultStatus.READY  # will be retried
        clock.shift(timedelta(hours=1))
        work_off()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED and result.is_finished
    assert len(result.errors) == 2 and result.attempts == 2
    error = result.errors[0]
    assert error.exception_class is KeyError
    assert error.exception_class_path == "builtins.KeyError"
    assert 'raise KeyError("missing")' in error.traceback
    with pytest.raises(ValueError, match="Task failed"):
        _ = result.return_value
    # Not finished after the first failure, finished (FAILED) after the last.
    assert [s[0] for s in signals] == ["enqueued", "started", "started", "finished"]
    assert signals[-1][2] == TaskResultStatus.FAILED


def test_non_json_return_value_fails_the_task(settings):
    settings.JOBS = {**settings.JOBS, "MAX_ATTEMPTS": 1}
    result = tasks.not_json.enqueue()
    work_off()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is TypeError


def test_async_tasks_run():
    result = tasks.async_add.enqueue(1, 2)
    work_off()
    assert tasks.async_add.get_result(result.id).return_value == 3


def test_context_carries_the_attempt_number():
    result = tasks.with_context.enqueue(fail_until=2)
    with time_machine.travel(LATER, tick=False) as clock:
        work_off()
        clock.shift(timedelta(hours=1))
        work_off()
    result.refresh()
    assert result.return_value == 2
    from tests.testapp.models import Event

    assert [e.data for e in Event.objects.filter(name="context")] == [
        {"attempt": 1, "id": result.id},
        {"attempt": 2, "id": result.id},
    ]


def test_run_after_defers_and_priority_orders():
    when = timezone.now() + timedelta(hours=1)
    deferred = tasks.add.using(run_after=when).enqueue(1, 1)
    assert Job.objects.get(pk=int(deferred.id)).run_at == when
    low = tasks.add.using(priority=-10).enqueue(1, 2)
    high = tasks.add.using(priority=90).enqueue(1, 3)
    assert work_off().outcomes == ("succeeded", "succeeded")
    order = list(
        Job.objects.filter(status="succeeded")
        .order_by("finished_at", "id")
        .values_list("pk", flat=True)
    )
    assert order == [int(high.id), int(low.id)]


def test_task_and_jobs_api_share_the_worker():
    tasks.add.enqueue(1, 1)
    delay(targets.noop)()
    assert work_off().succeeded == 2


def test_get_result_errors():
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result("12345")
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result("not-a-number")
    plain = delay(targets.noop)()  # a jobs API job is not a task result
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(str(plain.pk))
    result = tasks.add.enqueue(1, 1)
    with pytest.raises(TaskResultMismatch):
        tasks.explode.get_result(result.id)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: tasks.add.using(queue_name="nope"), "Queue 'nope' is not valid"),
        (lambda: tasks.add.using(priority=101), "priority must be a whole number"),
        (lambda: tasks.add.using(run_after=timezone.now().replace(tzinfo=None)), "aware datetime"),
    ],
)
def test_invalid_tasks_are_refused(make, message):
    with pytest.raises(InvalidTask, match=message):
        make()


def test_arguments_must_be_json():
    with pytest.raises(TypeError):
        tasks.add.enqueue(object(), 1)
    assert Job.objects.count() == 0


def test_queues_and_options_are_checked():
    backend = JobsBackend("checked", {"QUEUES": [""], "OPTIONS": {"x": 1}})
    assert {message.id for message in backend.check()} == {"jobs.E020", "jobs.E021"}
    assert JobsBackend("fine", {"QUEUES": ["default"]}).check() == []
