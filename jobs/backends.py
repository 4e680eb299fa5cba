"""A django.tasks backend over the same table and workers as the jobs API.

    TASKS = {"default": {"BACKEND": "jobs.backends.JobsBackend", "QUEUES": ["default", "emails"]}}

``@task`` functions then get what the jobs API has: retries with backoff,
timeouts, crash recovery, the admin and the dashboard. A TaskResult's id is
the Job's primary key, as a string.

This module imports the rest of jobs only when a task is enqueued or a result
read, as Django's session backends import their model: so that a TASKS entry
naming this backend loads, and its check() can say what is wrong, in a project
that lacks "jobs" in INSTALLED_APPS (where jobs' models cannot be imported).
"""

from dataclasses import replace

from django.apps import apps
from django.core.checks import Error
from django.tasks import TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils import timezone
from django.utils.json import normalize_json

from .conf import QUEUE_NAME_MAX_LENGTH, jobs_settings


class JobsBackend(BaseTaskBackend):
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def validate_task(self, task):
        super().validate_task(task)
        # Checked even when QUEUES is empty (no queue validation, as Django
        # documents it): a name the table cannot store must fail here.
        if len(task.queue_name) > QUEUE_NAME_MAX_LENGTH:
            raise InvalidTask(
                f"Queue name {task.queue_name[:20]!r}... is longer than "
                f"{QUEUE_NAME_MAX_LENGTH} characters."
            )

    def enqueue(self, task, args, kwargs):
        from .enqueueing import _job_row, _submit, call_keys
        from .taskcalls import task_call, task_result

        self.validate_task(task)
        args, kwargs = normalize_json(list(args)), normalize_json(dict(kwargs))
        # Keys declared with @jobs.limits under @task, given the call's arguments.
        keys = call_keys(getattr(task.func, "jobs_limits", None) or {}, args, kwargs)
        job = _job_row(
            task_call(task, self.alias, args, kwargs),
            task.module_path,
            priority=task.priority,
            run_at=task.run_after,
            queue=task.queue_name,
            **keys,
        )
        if not jobs_settings().DELAY_JOBS:
            return self._run_inline(job, task)
        job = _submit(job)
        result = task_result(job, task)
        task_enqueued.send(sender=type(self), task_result=result)
        return result

    def _run_inline(self, job, task):
        """DELAY_JOBS off: save the row first, so the result, the context and
        every signal carry its real id, then run it here, in django.tasks'
        order: enqueued, started, finished. Errors reach the caller, as with
        every job run inline; the row records them first."""
        from . import payload
        from .models import Job
        from .running import error_entry, summary
        from .taskcalls import TaskCall, task_result

        # Saved as running, so that no worker claims it meanwhile.
        job.status, job.locked_by = Job.Status.RUNNING, "inline"
        job.save()
        enqueued = replace(task_result(job, task), status=TaskResultStatus.READY, worker_ids=[])
        task_enqueued.send(sender=type(self), task_result=enqueued)
        call = TaskCall(
            task, payload.decode(job.payload["args"]), payload.decode(job.payload["kwargs"])
        )
        job.attempts, job.locked_at = 1, timezone.now()
        call.before(job)
        try:
            value = call.perform()
        except BaseException as exc:
            now = timezone.now()
            job.status, job.failed_at, job.finished_at = Job.Status.FAILED, now, now
            job.last_error, job.errors, job.error_count = (
                summary(exc),
                [error_entry(job, exc, now)],
                1,
            )
            job.save()
            call.after(job)
            raise
        job.status, job.finished_at = Job.Status.SUCCEEDED, timezone.now()
        job.result = payload.encode(value, "return value")
        job.save()
        call.after(job)
        return task_result(job, task)

    def get_result(self, result_id):
        from .models import Job
        from .payload import DeserializationError
        from .taskcalls import task_result

        try:
            job = Job.objects.get(pk=int(result_id))
        except (ValueError, TypeError, Job.DoesNotExist):
            raise TaskResultDoesNotExist(result_id) from None
        if "task" not in (job.payload or {}):
            raise TaskResultDoesNotExist(result_id)
        try:
            return task_result(job)
        except DeserializationError as exc:
            raise InvalidTask(f"Task result {result_id} cannot be read: {exc}") from exc

    def check(self, **kwargs):
        errors = list(super().check(**kwargs))
        if not apps.is_installed("jobs"):
            errors.append(
                Error(
                    f"TASKS[{self.alias!r}] uses jobs.backends.JobsBackend, but 'jobs' is not "
                    "in INSTALLED_APPS.",
                    hint="Add 'jobs' to INSTALLED_APPS and run migrate.",
                    id="jobs.E022",
                )
            )
        # An empty QUEUES means any queue, as Django documents.
        if not all(isinstance(q, str) and 0 < len(q) <= QUEUE_NAME_MAX_LENGTH for q in self.queues):
            errors.append(
                Error(
                    f"TASKS[{self.alias!r}]['QUEUES'] must list queue names "
                    f"of 1 to {QUEUE_NAME_MAX_LENGTH} characters.",
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
