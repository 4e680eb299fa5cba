"""django.tasks tasks stored as jobs: the task a row holds, its TaskResult,
and the performable that runs it and sends Django's task signals.

A task's payload records the task as it was enqueued (its path, backend
alias, queue, priority and run_after), so that the worker runs, and
``get_result()`` describes, exactly that task: a task enqueued through
another alias is validated against that alias's QUEUES, and its signals
come from that alias's backend.
"""

from datetime import datetime

from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus
from django.tasks.base import DEFAULT_TASK_BACKEND_ALIAS, TaskError
from django.tasks.exceptions import InvalidTask, InvalidTaskBackend
from django.tasks.signals import task_finished, task_started
from django.utils.json import normalize_json
from django.utils.module_loading import import_string

from . import payload
from .models import Job

STATUSES = {
    Job.Status.READY: TaskResultStatus.READY,
    # django.tasks has no "scheduled", "blocked" or "cancelled": waiting jobs
    # are ready to it, and a cancelled one did not succeed.
    Job.Status.SCHEDULED: TaskResultStatus.READY,
    Job.Status.BLOCKED: TaskResultStatus.READY,
    Job.Status.RUNNING: TaskResultStatus.RUNNING,
    Job.Status.SUCCEEDED: TaskResultStatus.SUCCESSFUL,
    Job.Status.FAILED: TaskResultStatus.FAILED,
    Job.Status.CANCELLED: TaskResultStatus.FAILED,
}


def task_call(task: Task, alias: str, args: list, kwargs: dict) -> dict:
    """A payload's call for ``task`` enqueued through the backend ``alias``."""
    return {
        "task": task.module_path,
        "backend": alias,
        "queue_name": task.queue_name,
        "priority": task.priority,
        "run_after": None if task.run_after is None else task.run_after.isoformat(),
        "args": payload.encode(args, "task argument"),
        "kwargs": payload.encode(kwargs, "task argument"),
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


def enqueued_task(data: dict) -> Task:
    """The task a payload holds, as it was enqueued. Rows written before the
    alias and options were stored get the task's own defaults."""
    path = data["task"]
    run_after = data.get("run_after")
    try:
        return resolve_task(path).using(
            backend=data.get("backend", DEFAULT_TASK_BACKEND_ALIAS),
            queue_name=data.get("queue_name"),
            priority=data.get("priority"),
            run_after=None if run_after is None else datetime.fromisoformat(run_after),
        )
    except (InvalidTask, InvalidTaskBackend) as exc:
        # The settings changed since (alias or queue gone): it cannot run as enqueued.
        raise payload.DeserializationError(f"Task {path} cannot run as enqueued: {exc}") from exc


def task_result(job: Job, task: Task | None = None) -> TaskResult:
    """The django.tasks view of a job row; ``task``: the row's, if known."""
    data = job.payload
    task = task or enqueued_task(data)
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
    """The performable for a task job: runs the function, sends the signals.

    ``task_started`` goes out when an attempt starts, ``task_finished`` once,
    from the ``after`` hook, which runs only for an outcome this worker
    recorded (or crash recovery did): never from a worker whose claim was lost.
    """

    def __init__(self, task: Task, args, kwargs):
        self.task, self.args, self.kwargs = task, args, kwargs

    @classmethod
    def from_payload(cls, data):
        task = enqueued_task(data)
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
        if job.status in Job.FINISHED:
            task_finished.send(sender=self._sender(), task_result=task_result(job, self.task))
