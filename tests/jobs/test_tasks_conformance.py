"""django.tasks conformance: every backend behaviour Django 6.1's own task tests
check (tests/tasks/test_tasks.py, test_immediate_backend.py,
test_dummy_backend.py), checked against JobsBackend with a real database.

Django's tests run their tasks with the dummy backend (stored, never run) and
the immediate backend (run at enqueue). Here a task is stored by enqueue(),
like the dummy backend's, and run by ``work_off()``, the worker's own code;
the immediate backend's checks are made once it has run. Where JobsBackend
differs on purpose, the test says so.
"""

import dataclasses
import logging
import pickle
import re
from datetime import datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.tasks import (
    DEFAULT_TASK_QUEUE_NAME,
    TaskResultStatus,
    default_task_backend,
    task,
    task_backends,
)
from django.tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, Task
from django.tasks.exceptions import (
    InvalidTask,
    InvalidTaskBackend,
    TaskResultDoesNotExist,
    TaskResultMismatch,
)
from django.utils import timezone
from django.utils.module_loading import import_string

from jobs.backends import JobsBackend
from jobs.models import Job
from jobs.testing import work_off
from tests.testapp import conformance as test_tasks

pytestmark = pytest.mark.django_db

BACKEND = "jobs.backends.JobsBackend"


@pytest.fixture(autouse=True)
def tasks_setting(settings):
    """Django's TaskTestCase settings, with JobsBackend for both backends."""
    settings.TASKS = {
        "default": {"BACKEND": BACKEND, "QUEUES": ["default", "queue_1"]},
        "immediate": {"BACKEND": BACKEND, "QUEUES": []},
        "missing": {"BACKEND": "does.not.exist"},
    }
    settings.USE_TZ = True


@pytest.fixture
def one_attempt(settings):
    """Django's backends never retry; JobsBackend retries failed tasks with
    backoff, by design. One attempt makes a failure final, as there."""
    settings.JOBS = {**settings.JOBS, "MAX_ATTEMPTS": 1}


def run(result):
    """Run what is due, as a worker would, and refresh ``result``."""
    work_off()
    result.refresh()
    return result


# -- the backend ------------------------------------------------------------------


def test_using_correct_backend():
    assert default_task_backend == task_backends["default"]
    assert isinstance(task_backends["default"], JobsBackend)
    assert default_task_backend.alias == "default"
    assert default_task_backend.options == {}


def test_backend_capabilities():
    # Unlike Django's two: deferral and results from any process.
    backend = task_backends["default"]
    assert backend.supports_defer and backend.supports_async_task
    assert backend.supports_get_result and backend.supports_priority


def test_task_decorator():
    assert isinstance(test_tasks.noop_task, Task)
    assert isinstance(test_tasks.noop_task_async, Task)
    assert isinstance(test_tasks.noop_task_from_bare_decorator, Task)


# -- enqueueing (the dummy backend's checks) ----------------------------------------


@pytest.mark.parametrize("task_name", ["noop_task", "noop_task_async"])
def test_enqueue_task(task_name):
    enqueued_task = getattr(test_tasks, task_name)
    result = enqueued_task.enqueue(1, two=3)
    assert result.status == TaskResultStatus.READY
    assert result.is_finished is False
    assert result.enqueued_at is not None
    assert (result.started_at, result.finished_at, result.last_attempted_at) == (None,) * 3
    assert (result.attempts, result.errors) == (0, [])
    with pytest.raises(ValueError, match="Task has not finished yet"):
        _ = result.return_value
    assert result.task == enqueued_task
    assert result.task.run_after is None
    assert (result.args, result.kwargs) == ([1], {"two": 3})
    assert enqueued_task.get_result(result.id) == result  # stored, as the dummy's results


@pytest.mark.parametrize("task_name", ["noop_task", "noop_task_async"])
def test_aenqueue_task(task_name):
    enqueued_task = getattr(test_tasks, task_name)
    result = async_to_sync(enqueued_task.aenqueue)()
    assert result.status == TaskResultStatus.READY
    assert result.task == enqueued_task
    assert (result.args, result.kwargs) == ([], {})
    assert async_to_sync(enqueued_task.aget_result)(result.id) == result


def test_enqueue_with_invalid_argument():
    with pytest.raises(TypeError, match="Unsupported type"):
        test_tasks.noop_task.enqueue(datetime.now())
    with pytest.raises(TypeError, match="Unsupported type"):
        async_to_sync(test_tasks.noop_task.aenqueue)(datetime.now())
    assert not Job.objects.exists()


def test_using_priority_queue_name_and_run_after():
    now = timezone.now()
    noop = test_tasks.noop_task
    assert noop.priority == 0 and noop.using(priority=1).priority == 1 and noop.priority == 0
    assert noop.queue_name == DEFAULT_TASK_QUEUE_NAME
    assert noop.using(queue_name="queue_1").queue_name == "queue_1"
    assert noop.run_after is None and noop.using(run_after=now).run_after == now


def test_using_creates_new_instance_and_chains():
    now = timezone.now()
    new_task = test_tasks.noop_task.using()
    assert new_task == test_tasks.noop_task and new_task is not test_tasks.noop_task
    run_after_task = test_tasks.noop_task.using(run_after=now)
    priority_task = run_after_task.using(priority=10)
    assert (priority_task.priority, priority_task.run_after) == (10, now)
    assert run_after_task.priority == 0


def test_using_unknown_or_missing_backend():
    with pytest.raises(
        InvalidTaskBackend, match=re.escape("The connection 'unknown' doesn't exist.")
    ):
        test_tasks.noop_task.using(backend="unknown")
    with pytest.raises(
        InvalidTaskBackend, match=re.escape("Could not find backend 'does.not.exist'")
    ):
        test_tasks.noop_task.using(backend="missing")


def test_result_task_is_the_task_enqueued():
    """result.task equals what was enqueued, run_after included: None unless given."""
    when = timezone.now() + timedelta(hours=1)
    for enqueued_task in (
        test_tasks.noop_task.using(priority=7, queue_name="queue_1"),
        test_tasks.noop_task.using(run_after=when),
    ):
        result = enqueued_task.enqueue()
        assert result.task == enqueued_task
        assert default_task_backend.get_result(result.id).task == enqueued_task
    immediate = test_tasks.calculate_meaning_of_life
    result = run(immediate.enqueue())
    assert result.task == immediate and result.task.run_after is None


def test_run_after_defers_and_priority_orders():
    # Beyond Django's two backends: they neither defer nor order.
    later = test_tasks.noop_task.using(run_after=timezone.now() + timedelta(hours=1)).enqueue()
    low = test_tasks.noop_task.using(priority=-10).enqueue()
    high = test_tasks.noop_task.using(priority=90).enqueue()
    assert work_off().outcomes == ("succeeded", "succeeded")
    order = Job.objects.filter(status="succeeded").order_by("finished_at", "id")
    assert list(order.values_list("pk", flat=True)) == [int(high.id), int(low.id)]
    assert default_task_backend.get_result(later.id).status == TaskResultStatus.READY


def test_refresh_result():
    result = async_to_sync(test_tasks.noop_task.aenqueue)()
    original = dataclasses.asdict(result)
    result.refresh()
    assert dataclasses.asdict(result) == original
    async_to_sync(result.arefresh)()
    assert dataclasses.asdict(result) == original
    # And a refresh picks up what the store says now (the dummy backend's check).
    Job.objects.filter(pk=int(result.id)).update(status="failed")
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    Job.objects.filter(pk=int(result.id)).update(status="running")
    async_to_sync(result.arefresh)()
    assert result.status == TaskResultStatus.RUNNING


def test_enqueue_logs(caplog):
    with caplog.at_level(logging.DEBUG, logger="django.tasks"):
        result = test_tasks.noop_task.enqueue()
    lines = [r.getMessage() for r in caplog.records if r.name == "django.tasks"]
    assert len(lines) == 1 and "enqueued" in lines[0] and result.id in lines[0]


def test_takes_context_is_stored_ready():
    assert test_tasks.get_task_id.enqueue().status == TaskResultStatus.READY


def test_validate_disallowed_async_task(monkeypatch):
    backend = task_backends["default"]
    monkeypatch.setattr(backend, "supports_async_task", False)
    with pytest.raises(InvalidTask, match=re.escape("Backend does not support async Tasks.")):
        backend.validate_task(test_tasks.noop_task_async)


def test_check():
    assert list(default_task_backend.check()) == []


def test_naive_datetime():
    with pytest.raises(InvalidTask, match=re.escape("run_after must be an aware datetime.")):
        test_tasks.noop_task.using(run_after=datetime.now())


def test_naive_run_after_is_accepted_without_time_zones(settings):
    settings.USE_TZ = False
    when = datetime.now() + timedelta(hours=1)
    result = test_tasks.noop_task.using(run_after=when).enqueue()
    assert result.task.run_after == when
    assert Job.objects.get(pk=int(result.id)).run_at == when


@pytest.mark.parametrize("priority", [TASK_MIN_PRIORITY - 1, TASK_MAX_PRIORITY + 1, 3.1])
def test_invalid_priority(priority):
    message = (
        f"priority must be a whole number between {TASK_MIN_PRIORITY} and {TASK_MAX_PRIORITY}."
    )
    with pytest.raises(InvalidTask, match=message):
        test_tasks.noop_task.using(priority=priority)


def test_valid_priorities():
    for priority in (TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, 0):
        test_tasks.noop_task.using(priority=priority).enqueue()
    assert Job.objects.count() == 3


def test_unknown_queue_name():
    with pytest.raises(InvalidTask, match=re.escape("Queue 'queue-2' is not valid for backend.")):
        test_tasks.noop_task.using(queue_name="queue-2")
    # Validation is bypassed when the backend's QUEUES is an empty list.
    anywhere = test_tasks.noop_task.using(queue_name="queue-2", backend="immediate")
    assert anywhere.queue_name == "queue-2"
    assert run(anywhere.enqueue()).status == TaskResultStatus.SUCCESSFUL


def test_empty_queues_is_no_error_of_the_checks():
    assert task_backends["immediate"].check() == []


def test_a_queue_name_too_long_to_store_is_an_invalid_task():
    with pytest.raises(InvalidTask, match="longer than 100 characters"):
        test_tasks.noop_task.using(queue_name="q" * 101, backend="immediate")
    assert not Job.objects.exists()


def test_validate_on_enqueue(settings):
    task_with_custom_queue_name = test_tasks.noop_task.using(
        queue_name="unknown_queue", backend="immediate"
    )
    settings.TASKS = {**settings.TASKS, "immediate": {"BACKEND": BACKEND, "QUEUES": ["queue-1"]}}
    with pytest.raises(InvalidTask, match="Queue 'unknown_queue' is not valid for backend"):
        task_with_custom_queue_name.enqueue()
    with pytest.raises(InvalidTask, match="Queue 'unknown_queue' is not valid for backend"):
        async_to_sync(task_with_custom_queue_name.aenqueue)()


def test_invalid_function():
    def not_at_module_level():
        pass

    for invalid_function in (any, not_at_module_level):
        with pytest.raises(
            InvalidTask, match=re.escape("Task function must be defined at a module level.")
        ):
            task()(invalid_function)


def test_takes_context_without_taking_context():
    with pytest.raises(
        InvalidTask,
        match=re.escape("Task takes context but does not have a first argument of 'context'."),
    ):
        task(takes_context=True)(test_tasks.calculate_meaning_of_life.func)


def test_run_after_in_decorator():
    with pytest.raises(TypeError, match="run_after cannot be defined statically"):
        task(run_after=timezone.now())(test_tasks.calculate_meaning_of_life.func)


def test_get_backend_and_names():
    assert test_tasks.noop_task.backend == "default"
    assert isinstance(test_tasks.noop_task.get_backend(), JobsBackend)
    immediate_task = test_tasks.noop_task.using(backend="immediate")
    assert immediate_task.backend == "immediate"
    assert immediate_task.get_backend() is task_backends["immediate"]
    assert test_tasks.noop_task.name == "noop_task"
    path = test_tasks.noop_task.module_path
    assert path == "tests.testapp.conformance.noop_task"
    assert import_string(path) is test_tasks.noop_task


def test_call_task():
    assert test_tasks.calculate_meaning_of_life.call() == 42
    assert async_to_sync(test_tasks.calculate_meaning_of_life.acall)() == 42
    assert test_tasks.noop_task_async.call() is None


# -- results --------------------------------------------------------------------------


def test_get_result():
    result = default_task_backend.enqueue(test_tasks.noop_task, (), {})
    assert test_tasks.noop_task.get_result(result.id) == result
    assert default_task_backend.get_result(result.id) == result


def test_get_result_async():
    result = async_to_sync(default_task_backend.aenqueue)(test_tasks.noop_task, (), {})
    assert async_to_sync(test_tasks.noop_task.aget_result)(result.id) == result


def test_get_missing_result():
    with pytest.raises(TaskResultDoesNotExist):
        test_tasks.noop_task.get_result("123")
    with pytest.raises(TaskResultDoesNotExist):
        async_to_sync(test_tasks.noop_task.aget_result)("123")
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result("not-a-number")


def test_get_incorrect_result():
    result = default_task_backend.enqueue(test_tasks.noop_task_async, (), {})
    with pytest.raises(TaskResultMismatch, match="Task does not match"):
        test_tasks.noop_task.get_result(result.id)
    with pytest.raises(TaskResultMismatch, match="Task does not match"):
        async_to_sync(test_tasks.noop_task.aget_result)(result.id)


def test_get_result_of_a_task_that_no_longer_imports_names_it():
    result = test_tasks.noop_task.enqueue()
    job = Job.objects.get(pk=int(result.id))
    Job.objects.filter(pk=job.pk).update(
        payload={**job.payload, "task": "tests.testapp.removed_module.noop_task"}
    )
    with pytest.raises(InvalidTask, match=r"tests\.testapp\.removed_module\.noop_task"):
        default_task_backend.get_result(result.id)


def test_pickle_task_and_result():
    assert pickle.loads(pickle.dumps(test_tasks.noop_task)) == test_tasks.noop_task
    result = test_tasks.noop_task.enqueue()
    assert pickle.loads(pickle.dumps(result)) == result


def test_no_backends(settings):
    settings.TASKS = {}
    with pytest.raises(InvalidTaskBackend):
        test_tasks.noop_task.enqueue()


# -- running (the immediate backend's checks, once a worker has run it) ---------------


@pytest.mark.parametrize("task_name", ["noop_task", "noop_task_async"])
def test_run_task(task_name):
    enqueued_task = getattr(test_tasks, task_name)
    result = run(enqueued_task.enqueue(1, two=3))
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.is_finished is True
    assert None not in (result.started_at, result.last_attempted_at, result.finished_at)
    assert result.started_at >= result.enqueued_at
    assert result.finished_at >= result.started_at
    assert result.return_value is None
    assert result.task == enqueued_task
    assert (result.args, result.kwargs) == ([1], {"two": 3})
    assert result.attempts == 1


@pytest.mark.parametrize(
    ("task_name", "exception", "message"),
    [
        ("failing_task_value_error", ValueError, "This Task failed due to ValueError"),
        ("failing_task_system_exit", SystemExit, "This Task failed due to SystemExit"),
        # Django's immediate backend lets KeyboardInterrupt through, to stop the
        # process it runs in. A worker's job code is a guest: its
        # KeyboardInterrupt is a failed attempt like any error (see the style
        # guide); the worker's own Ctrl-C never reaches job code as one.
        (
            "failing_task_keyboard_interrupt",
            KeyboardInterrupt,
            "This Task failed due to KeyboardInterrupt",
        ),
    ],
)
def test_catches_exception(one_attempt, caplog, task_name, exception, message):
    failing = getattr(test_tasks, task_name)
    with caplog.at_level(logging.DEBUG):
        result = run(failing.enqueue())
    assert result.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="Task failed"):
        _ = result.return_value
    assert result.is_finished is True
    assert None not in (result.started_at, result.last_attempted_at, result.finished_at)
    assert result.started_at >= result.enqueued_at
    assert result.finished_at >= result.started_at
    assert result.errors[0].exception_class is exception
    assert result.errors[0].traceback.endswith(f"{exception.__name__}: {message}\n")
    assert result.task == failing
    assert (result.args, result.kwargs) == ([], {})
    # Django logs the failure on "django.tasks" with the exception; the task
    # signals log it here too (state=FAILED), and the worker's own line on
    # "jobs" carries the error, since the signal is sent after the outcome is
    # written, outside the except block.
    failed = [r for r in caplog.records if r.name == "django.tasks" and r.levelno == logging.ERROR]
    assert len(failed) == 1 and f"id={result.id}" in failed[0].getMessage()
    assert "state=FAILED" in failed[0].getMessage()
    assert any(r.name == "jobs" and message in r.getMessage() for r in caplog.records)


def test_a_failure_is_retried_before_it_is_final(settings, task_signals):
    # Deliberately unlike Django's backends: a failed attempt goes back with
    # backoff (READY again) until JOBS["MAX_ATTEMPTS"]; only then FAILED.
    settings.JOBS = {**settings.JOBS, "MAX_ATTEMPTS": 2}
    result = run(test_tasks.failing_task_value_error.enqueue())
    assert result.status == TaskResultStatus.READY and not result.is_finished
    assert len(result.errors) == 1
    Job.objects.filter(pk=int(result.id)).update(run_at=timezone.now(), status="ready")
    result = run(result)
    assert result.status == TaskResultStatus.FAILED and len(result.errors) == 2
    assert [s[0] for s in task_signals] == ["enqueued", "started", "started", "finished"]


def test_throws_keyboard_interrupt_inline(settings):
    # Run in the caller (DELAY_JOBS off), as Django's immediate backend runs,
    # a KeyboardInterrupt reaches the caller. Unlike there, on purpose, the row
    # records the failure and task_finished goes out first: every task that
    # ends is finished once, and no worker may pick the row up later.
    settings.JOBS = {**settings.JOBS, "DELAY_JOBS": False}
    with pytest.raises(KeyboardInterrupt):
        default_task_backend.enqueue(test_tasks.failing_task_keyboard_interrupt, [], {})
    assert Job.objects.get().status == "failed"


def test_complex_exception(one_attempt):
    result = run(test_tasks.complex_exception.enqueue())
    assert result.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="Task failed"):
        _ = result.return_value
    assert result._return_value is None
    assert result.errors[0].exception_class is ValueError
    assert 'ValueError(ValueError("This task failed"))' in result.errors[0].traceback
    assert result.task == test_tasks.complex_exception


def test_complex_return_value(one_attempt):
    result = run(test_tasks.complex_return_value.enqueue())
    assert result.status == TaskResultStatus.FAILED
    assert result.started_at and result.finished_at >= result.started_at
    assert result._return_value is None
    assert result.errors[0].exception_class is TypeError
    assert "Unsupported type" in result.errors[0].traceback


def test_task_error_exception_class_is_checked(one_attempt):
    result = run(test_tasks.failing_task_value_error.enqueue())
    error = result.errors[0]
    object.__setattr__(error, "exception_class_path", "subprocess.run")
    with pytest.raises(
        ValueError, match=re.escape("'subprocess.run' does not reference a valid exception.")
    ):
        _ = error.exception_class
    object.__setattr__(error, "exception_class_path", "does.not.exist")
    with pytest.raises(ImportError):
        _ = error.exception_class


def test_result():
    result = run(default_task_backend.enqueue(test_tasks.calculate_meaning_of_life, [], {}))
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 42


def test_result_async():
    enqueue = async_to_sync(default_task_backend.aenqueue)
    result = enqueue(test_tasks.calculate_meaning_of_life, [], {})
    work_off()
    async_to_sync(result.arefresh)()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 42


def test_takes_context():
    result = run(test_tasks.get_task_id.enqueue())
    assert result.return_value == result.id


def test_context():
    assert run(test_tasks.check_context.enqueue(1)).status == TaskResultStatus.SUCCESSFUL


def test_logs(caplog):
    with caplog.at_level(logging.DEBUG, logger="django.tasks"):
        result = run(test_tasks.noop_task.enqueue())
    lines = [r.getMessage() for r in caplog.records if r.name == "django.tasks"]
    assert len(lines) == 3
    assert "enqueued" in lines[0] and result.id in lines[0]
    assert "state=RUNNING" in lines[1] and result.id in lines[1]
    assert "state=SUCCESSFUL" in lines[2] and result.id in lines[2]
    assert not any("NoneType" in line for line in lines)


def test_signals_in_order_with_the_backends_class(task_signals):
    result = run(test_tasks.noop_task.enqueue())
    assert [s[0] for s in task_signals] == ["enqueued", "started", "finished"]
    assert [s[2] for s in task_signals] == [
        TaskResultStatus.READY,
        TaskResultStatus.RUNNING,
        TaskResultStatus.SUCCESSFUL,
    ]
    assert {s[1] for s in task_signals} == {JobsBackend}
    assert {s[3] for s in task_signals} == {result.id}


@pytest.mark.django_db(transaction=True)
def test_enqueued_in_the_callers_transaction():
    # Django's immediate backend runs at once, inside the transaction. Ours
    # stores the task in it: a rollback takes the task back too, on purpose.
    with transaction.atomic():
        result = test_tasks.noop_task.enqueue()
        assert result.enqueued_at is not None
        assert default_task_backend.get_result(result.id) == result
        transaction.set_rollback(True)
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(result.id)
