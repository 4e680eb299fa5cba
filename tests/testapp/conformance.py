"""Task functions for the django.tasks conformance suite, after those of
Django's own tests/tasks/tasks.py (same names, same behaviour)."""

import datetime
import time

from django.dispatch import receiver
from django.tasks import TaskContext, task
from django.tasks.signals import task_finished, task_started

from jobs.backends import JobsBackend
from jobs.models import Job

from .models import Event


@task()
def noop_task(*args, **kwargs):
    return None


@task
def noop_task_from_bare_decorator(*args, **kwargs):
    return None


@task()
async def noop_task_async(*args, **kwargs):
    return None


@task()
def calculate_meaning_of_life():
    return 42


@task()
def failing_task_value_error():
    raise ValueError("This Task failed due to ValueError")


@task()
def failing_task_system_exit():
    raise SystemExit("This Task failed due to SystemExit")


@task()
def failing_task_keyboard_interrupt():
    raise KeyboardInterrupt("This Task failed due to KeyboardInterrupt")


@task()
def complex_exception():
    raise ValueError(ValueError("This task failed"))


@task()
def complex_return_value():
    # A value that is not JSON.
    return datetime.datetime.now()


@task(takes_context=True)
def get_task_id(context):
    return context.task_result.id


@task(takes_context=True)
def check_context(context, attempt):
    assert isinstance(context, TaskContext)
    assert context.attempt == attempt


@task(takes_context=True)
def loses_its_claim(context, then_fail=False):
    """Stands for a worker that stalled while its job was taken over: the
    row's lease changes under it, as recovery and a new claim would change it."""
    Job.objects.filter(pk=int(context.task_result.id)).update(lease="taken-over")
    if then_fail:
        raise ValueError("failed after losing the claim")


class BulkBackend(JobsBackend):
    """A second backend class, so that tests can tell the signals' senders apart."""


@task(takes_context=True)
def stuck_in_c_code(context):
    """Blocks in one C call, which no interruption can stop."""
    Event.objects.create(name="stuck_task_started", data={"id": context.task_result.id})
    time.sleep(3600)


@receiver(task_started)
@receiver(task_finished)
def record_stuck_task_signals(sender, task_result, signal, **kwargs):
    """What a worker process signals for stuck_in_c_code, where a test can see it."""
    if task_result.task.func is stuck_in_c_code.func:
        Event.objects.create(
            name="stuck_task_finished" if signal is task_finished else "stuck_task_signal",
            data={"id": task_result.id, "status": task_result.status},
        )
