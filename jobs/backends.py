"""A django.tasks backend over the same table and workers as the jobs API.

    TASKS = {"default": {"BACKEND": "jobs.backends.JobsBackend", "QUEUES": ["default", "emails"]}}

``@task`` functions then get what the jobs API has: retries with backoff,
timeouts, crash recovery, the admin and the dashboard. A TaskResult's id is
the Job's primary key, as a string.
"""

from django.core.checks import Error
from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import TaskError
from django.tasks.exceptions import TaskResultDoesNotExist
from django.tasks.signals import task_enqueued, task_finished, task_started
from django.utils.json import normalize_json
from django.utils.module_loading import import_string

from . import payload
from .enqueueing import _job_row, _submit
from .models import Job

STATUSES = {
    Job.Status.READY: TaskResultStatus.READY,
    Job.Status.SCHEDULED: TaskResultStatus.READY,  # django.tasks has no "scheduled"
    Job.Status.RUNNING: TaskResultStatus.RUNNING,
    Job.Status.SUCCEEDED: TaskResultStatus.SUCCESSFUL,
    Job.Status.FAILED: TaskResultStatus.FAILED,
}


def resolve_task(path: str) -> Task:
    """The Task object at ``path``, under the same rules as any payload."""
    module_name = path.rpartition(".")[0]
    if not payload.allowed_module(module_name):
        raise payload.DeserializationError(f"Refusing to run task {path}: module not allowed.")
    try:
        task = import_string(path)
    except ImportError as exc:
        raise payload.DeserializationError(f"Cannot import task {path}: {exc}") from exc
    if not isinstance(task, Task) or task.func.__module__ != module_name:
        raise payload.DeserializationError(f"Refusing to run {path}: not a task defined there.")
    return task


def task_result(job: Job, task: Task | None = None) -> TaskResult:
    """The django.tasks view of a job row."""
    data = job.payload
    task = task or resolve_task(data["task"])
    task = task.using(priority=job.priority, queue_name=job.queue, run_after=job.run_at)
    workers = [error.get("worker", "") for error in job.errors]
    if job.status in {Job.Status.RUNNING, Job.Status.SUCCEEDED}:
        workers.append(job.locked_by)
    result = TaskResult(
        task=task,
        id=str(job.pk),
        status=STATUSES[job.status],
        enqueued_at=job.created_at,
        started_at=job.locked_at,
        last_attempted_at=job.locked_at,
        finished_at=job.finished_at,
        args=payload.decode(data["args"]),
        kwargs=payload.decode(data["kwargs"]),
        backend=task.backend,
        errors=[
            TaskError(exception_class_path=e["exception_class"], traceback=e.get("traceback", ""))
            for e in job.errors
        ],
        worker_ids=workers,
    )
    if job.status == Job.Status.SUCCEEDED:
        object.__setattr__(result, "_return_value", payload.decode(job.result))
    return result


class TaskCall:
    """The performable for a task job: runs the function, sends the signals."""

    def __init__(self, task: Task, args, kwargs):
        self.task, self.args, self.kwargs = task, args, kwargs

    @classmethod
    def from_payload(cls, data):
        task = resolve_task(data["task"])
        return cls(task, payload.decode(data["args"]), payload.decode(data["kwargs"]))

    @property
    def display_name(self):
        return self.task.module_path

    def _sender(self):
        return type(self.task.get_backend())

    def before(self, job):
        self._job = job
        task_started.send(sender=self._sender(), task_result=task_result(job, self.task))

    def perform(self):
        if self.task.takes_context:
            context = TaskContext(task_result=task_result(self._job, self.task))
            value = self.task.call(context, *self.args, **self.kwargs)
        else:
            value = self.task.call(*self.args, **self.kwargs)
        # Task results must be JSON, as Django's own backends insist.
        return normalize_json(value)

    def after(self, job):
        if job.status in {Job.Status.SUCCEEDED, Job.Status.FAILED}:
            task_finished.send(sender=self._sender(), task_result=task_result(job, self.task))


class JobsBackend(BaseTaskBackend):
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def enqueue(self, task, args, kwargs):
        self.validate_task(task)
        args, kwargs = normalize_json(list(args)), normalize_json(dict(kwargs))
        call = {
            "task": task.module_path,
            "args": payload.encode(args, "task argument"),
            "kwargs": payload.encode(kwargs, "task argument"),
        }
        job = _submit(
            _job_row(
                call,
                task.module_path,
                priority=task.priority,
                run_at=task.run_after,
                queue=task.queue_name,
            )
        )
        result = task_result(job, task)
        task_enqueued.send(sender=type(self), task_result=result)
        return result

    def get_result(self, result_id):
        try:
            job = Job.objects.get(pk=int(result_id))
        except (ValueError, TypeError, Job.DoesNotExist):
            raise TaskResultDoesNotExist(result_id) from None
        if "task" not in (job.payload or {}):
            raise TaskResultDoesNotExist(result_id)
        return task_result(job)

    def check(self, **kwargs):
        errors = list(super().check(**kwargs))
        if not self.queues or not all(
            isinstance(q, str) and 0 < len(q) <= 100 for q in self.queues
        ):
            errors.append(
                Error(
                    f"TASKS[{self.alias!r}]['QUEUES'] must list queue names "
                    "of 1 to 100 characters.",
                    id="jobs.E020",
                )
            )
        if self.options:
            errors.append(
                Error(
                    f"TASKS[{self.alias!r}]['OPTIONS'] is not used by JobsBackend: "
                    f"{', '.join(map(repr, self.options))}.",
                    hint="Configure the queue with the JOBS setting.",
                    id="jobs.E021",
                )
            )
        return errors
