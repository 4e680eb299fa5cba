"""The dashboard's writes: the model's operator verbs, applied in batches and logged.

Every job an action changes gets a ``LogEntry``, as the admin writes them, so
the job's page (and the admin's history) says who did what, and when. The
jobs are locked, changed and logged ``BATCH`` at a time, so that "every
failed job" costs a fixed number of queries per batch, never one per job,
and what is logged is exactly what was changed: a locked row cannot be
claimed (claims skip locked rows) or promoted in between.
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.db import transaction
from django.utils import timezone

from ..claiming import notify_enqueued
from ..models import Job

#: Jobs locked, changed and logged per transaction.
BATCH = 500
#: Most jobs one request changes: about a second of work, well inside the
#: router's 30 s. "Every failed job" of a million is done this many at a time.
REQUEST_LIMIT = 10_000


@dataclass(frozen=True)
class Verb:
    """One of ``JobQuerySet``'s operator verbs, as the dashboard offers it."""

    name: str
    #: The statuses the verb changes; others are left alone (running jobs always).
    statuses: tuple[str, ...]
    permission: str
    flag: int
    #: The LogEntry's change message; {via} names where the action was taken.
    message: str


VERBS = {
    verb.name: verb
    for verb in (
        Verb(
            "retry",
            (Job.Status.FAILED, *Job.WAITING),
            "jobs.change_job",
            CHANGE,
            "Retried from {via}: due now, attempts reset.",
        ),
        Verb(
            "run_now",
            Job.WAITING,
            "jobs.change_job",
            CHANGE,
            "Run now from {via}: due now, attempts kept.",
        ),
        Verb(
            "discard",
            tuple(s for s in Job.Status.values if s != Job.Status.RUNNING),
            "jobs.delete_job",
            DELETION,
            "Discarded from {via}.",
        ),
    )
}


def eligible(verb: Verb, jobs):
    """The jobs of ``jobs`` that ``verb`` would change."""
    return jobs.filter(status__in=verb.statuses)


def apply(verb: Verb, jobs, user, via: str = "the jobs dashboard", limit: int | None = None) -> int:
    """Apply ``verb`` to the jobs of ``jobs`` it may change, at most ``limit``
    (REQUEST_LIMIT by default); log each; return how many."""
    limit = REQUEST_LIMIT if limit is None else limit
    message = verb.message.format(via=via)
    todo = eligible(verb, jobs).order_by("pk").only("id", "name", "status")
    done, after = 0, 0
    while done < limit:
        with transaction.atomic():
            batch = list(todo.filter(pk__gt=after).select_for_update()[: min(BATCH, limit - done)])
            if not batch:
                break
            after = batch[-1].pk
            # Logged first: a discarded job's entry still names it.
            LogEntry.objects.log_actions(user.pk, batch, verb.flag, message)
            done += getattr(Job.objects.filter(pk__in=[job.pk for job in batch]), verb.name)()
        if len(batch) < BATCH:
            break
    return done


def reschedule(job_pk: int, run_at: datetime, user) -> bool:
    """Move a waiting or failed job to ``run_at``; a failed one starts its attempts afresh.

    Returns False if the job is running, finished or gone.
    """
    now = timezone.now()
    with transaction.atomic():
        job = (
            Job.objects.filter(pk=job_pk, status__in=(Job.Status.FAILED, *Job.WAITING))
            .select_for_update()
            .only("id", "name", "status", "queue")
            .first()
        )
        if job is None:
            return False
        fields = {"status": Job.waiting_status(run_at, now), "run_at": run_at, "updated_at": now}
        if job.status == Job.Status.FAILED:
            fields.update(attempts=0, failed_at=None, finished_at=None)
        Job.objects.filter(pk=job.pk).update(**fields)
        LogEntry.objects.log_actions(
            user.pk,
            [job],
            CHANGE,
            f"Rescheduled from the jobs dashboard to {run_at.isoformat()}"
            + (", attempts reset." if job.status == Job.Status.FAILED else "."),
        )
    if fields["status"] == Job.Status.READY:
        notify_enqueued({job.queue})
    return True


def history(job_pk: int, limit: int = 50) -> list[LogEntry]:
    """The newest actions taken on a job, from the dashboard or the admin, in one query."""
    return list(
        LogEntry.objects.filter(
            content_type__app_label=Job._meta.app_label,
            content_type__model=Job._meta.model_name,
            object_id=str(job_pk),
        )
        .select_related("user")
        .order_by("-action_time", "-pk")[:limit]
    )
