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

from .. import slots
from ..claiming import notify_enqueued
from ..models import Job, unique_key_kept

#: Jobs locked, changed and logged per transaction.
BATCH = 500
#: Most jobs one request changes: about a second of work, well inside the
#: router's 30 s. "Every failed job" of a million is done this many at a time.
REQUEST_LIMIT = 10_000


@dataclass(frozen=True)
class Verb:
    """One of ``JobQuerySet``'s operator verbs, as the dashboard offers it."""

    name: str
    #: The statuses the verb changes; others are left alone.
    statuses: tuple[str, ...]
    permission: str
    flag: int
    #: The LogEntry's change message; {via} names where the action was taken.
    message: str
    #: The message for a running job, if the verb touches running jobs.
    running_message: str = ""
    #: Deletes its jobs or ends them: the dashboard asks before it acts.
    destructive: bool = False


VERBS = {
    verb.name: verb
    for verb in (
        Verb(
            "retry",
            (Job.Status.FAILED, Job.Status.CANCELLED, *Job.WAITING),
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
            destructive=True,
        ),
        Verb(
            "cancel",
            (*Job.WAITING, Job.Status.RUNNING),
            "jobs.change_job",
            CHANGE,
            "Cancelled from {via}: it will not run.",
            running_message="Cancellation requested from {via}: its worker stops it.",
            destructive=True,
        ),
    )
}


def eligible(verb: Verb, jobs):
    """The jobs of ``jobs`` that ``verb`` would change."""
    jobs = jobs.filter(status__in=verb.statuses)
    if verb.name == "cancel":
        # A running job asked to stop already is not asked twice.
        jobs = jobs.exclude(status=Job.Status.RUNNING, cancel_requested_at__isnull=False)
    return jobs


def _changed(verb: Verb, pks: list[int]) -> int:
    """Apply the queryset verb to these jobs; how many it changed."""
    outcome = getattr(Job.objects.filter(pk__in=pks), verb.name)()
    # cancel() says (cancelled, asked to stop); the others how many.
    return sum(outcome) if isinstance(outcome, tuple) else outcome


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
            running = [job for job in batch if job.status == Job.Status.RUNNING]
            others = [job for job in batch if job.status != Job.Status.RUNNING]
            if others:
                LogEntry.objects.log_actions(user.pk, others, verb.flag, message)
            if running:
                LogEntry.objects.log_actions(
                    user.pk, running, verb.flag, verb.running_message.format(via=via)
                )
            done += _changed(verb, [job.pk for job in batch])
        if len(batch) < BATCH:
            break
    return done


def reschedule(job_pk: int, run_at: datetime, user) -> bool:
    """Move a waiting or failed job to ``run_at``; a failed one starts its attempts afresh.

    Returns False if the job is running, finished or gone.
    """
    now = timezone.now()
    # Serialized with unblocking: a keyed job due now waits for its key's
    # slot (blocked), and a ready one moved later frees its slot.
    with slots.serialized():
        job = (
            Job.objects.filter(pk=job_pk, status__in=(Job.Status.FAILED, *Job.WAITING))
            .select_for_update()
            .only("id", "name", "status", "queue", "concurrency_key")
            .first()
        )
        if job is None:
            return False
        status = Job.waiting_status(run_at, now, job.concurrency_key)
        fields = {"status": status, "run_at": run_at, "updated_at": now}
        if job.status == Job.Status.FAILED:
            # Back among waiting jobs, it yields its unique key to one waiting already.
            fields.update(
                attempts=0, failed_at=None, finished_at=None, unique_key=unique_key_kept()
            )
        Job.objects.filter(pk=job.pk).update(**fields)
        LogEntry.objects.log_actions(
            user.pk,
            [job],
            CHANGE,
            f"Rescheduled from the jobs dashboard to {run_at.isoformat()}"
            + (", attempts reset." if job.status == Job.Status.FAILED else "."),
        )
    if job.concurrency_key:
        slots.unblock(Job, {job.concurrency_key})
    if status == Job.Status.READY:
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
