"""The queue's tables: jobs, live workers and paused queues."""

from django.db import models
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone

from . import slots
from .conf import QUEUE_NAME_MAX_LENGTH
from .notifying import notify_cancel_requested, notify_enqueued


class JobQuerySet(models.QuerySet):
    def due(self, now=None):
        """Jobs whose run_at has come and that wait for a worker, in run order.

        Scheduled jobs count once their time has come, before a worker has
        promoted them to ready.
        """
        return self.filter(
            status__in=Job.WAITING,
            run_at__lte=now or timezone.now(),
        ).order_by("-priority", "run_at", "id")

    def for_queues(self, queues):
        """Restrict to some queues; an empty or None list means all of them."""
        return self.filter(queue__in=queues) if queues else self

    def in_priority_range(self, min_priority=None, max_priority=None):
        qs = self
        if min_priority is not None:
            qs = qs.filter(priority__gte=min_priority)
        if max_priority is not None:
            qs = qs.filter(priority__lte=max_priority)
        return qs

    # Operator verbs, shared by the CLI, the admin and the dashboard. None of
    # them touches a running job (that one belongs to its worker) except
    # cancel(), which asks its worker to stop it.

    def retry(self) -> int:
        """Put failed, cancelled (or waiting) jobs back, due now, with fresh
        attempts. A job with a concurrency key waits for a slot (blocked); one
        whose unique key another waiting job holds now yields its key."""
        now = timezone.now()
        jobs = self.filter(status__in=[Job.Status.FAILED, Job.Status.CANCELLED, *Job.WAITING])
        return self._put_back(
            jobs,
            run_at=now,
            attempts=0,
            failed_at=None,
            finished_at=None,
            cancel_requested_at=None,
            updated_at=now,
        )

    def run_now(self) -> int:
        """Make waiting jobs due at once (a failed job needs retry())."""
        now = timezone.now()
        return self._put_back(self.filter(status__in=Job.WAITING), run_at=now, updated_at=now)

    def _put_back(self, jobs, **fields) -> int:
        """Make ``jobs`` due: ready, or blocked for a slot; fill the slots and
        wake listening workers."""
        fields["status"] = Case(
            When(concurrency_key__isnull=False, then=Value(Job.Status.BLOCKED)),
            default=Value(Job.Status.READY),
        )
        using = self.db
        with slots.serialized(using):
            rows = list(jobs.values_list("pk", "queue", "concurrency_key", "unique_key"))
            keyless = [pk for pk, _, _, unique_key in rows if unique_key is None]
            updated = Job.objects.using(using).filter(pk__in=keyless).update(**fields)
            # A unique key at a time: two jobs put back together must not
            # both take the key, nor one take it from a job already waiting.
            for pk, _, _, unique_key in rows:
                if unique_key is not None:
                    job = Job.objects.using(using).filter(pk=pk)
                    updated += job.update(unique_key=unique_key_kept(), **fields)
        slots.unblock(Job, {key for _, _, key, _ in rows if key}, using=using)
        notify_enqueued({queue for _, queue, key, _ in rows if not key}, using=using)
        return updated

    def discard(self) -> int:
        """Delete jobs that are not running; returns how many."""
        using = self.db
        with slots.serialized(using):
            gone = self.exclude(status=Job.Status.RUNNING)
            keys = set(
                gone.filter(status=Job.Status.READY).values_list("concurrency_key", flat=True)
            )
            deleted, _ = gone.delete()
        slots.unblock(Job, keys, using=using)
        return deleted

    def cancel(self) -> tuple[int, int]:
        """Cancel waiting jobs (they never run) and ask running ones to stop.

        Returns (jobs cancelled, running jobs asked to stop). A running job
        sees the request through ``jobs.cancel_requested()`` and is interrupted
        JOBS["CANCEL_GRACE"] seconds after its worker hears of it; either way
        it ends cancelled, with no retry (unless it succeeded first).
        """
        using = self.db
        now = timezone.now()
        with slots.serialized(using):
            waiting = self.filter(status__in=Job.WAITING)
            keys = set(
                waiting.filter(status=Job.Status.READY).values_list("concurrency_key", flat=True)
            )
            cancelled = waiting.update(status=Job.Status.CANCELLED, finished_at=now, updated_at=now)
            asked = self.filter(status=Job.Status.RUNNING, cancel_requested_at__isnull=True).update(
                cancel_requested_at=now, updated_at=now
            )
        slots.unblock(Job, keys, using=using)
        if asked:
            notify_cancel_requested(using=using)
        return cancelled, asked


def unique_key_kept():
    """The row's unique key, unless another waiting job holds it: a job that
    comes back to the queue (retry, shutdown, recovery) then yields its key
    and both run, rather than one of them being lost."""
    taken = Job.objects.filter(unique_key=OuterRef("unique_key"), status__in=Job.WAITING).exclude(
        pk=OuterRef("pk")
    )
    return Case(When(Exists(taken), then=Value(None)), default=F("unique_key"))


class Job(models.Model):
    """One unit of work: what to call (payload), when, and what happened."""

    class Status(models.TextChoices):
        #: Due: workers claim ready jobs, by priority.
        READY = "ready", "Ready"
        #: Due later. Kept apart from ready jobs so that claiming never reads
        #: them; a worker promotes them to ready when their run_at comes.
        SCHEDULED = "scheduled", "Scheduled"
        #: Due, but its concurrency key has no free slot yet. Claims never
        #: read blocked jobs; one becomes ready when a slot frees (jobs.limits).
        BLOCKED = "blocked", "Blocked"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        #: Cancelled before it ran, or stopped on request while it ran; kept
        #: like failed jobs, never retried.
        CANCELLED = "cancelled", "Cancelled"

    name = models.CharField(max_length=255, help_text="What the job calls, for people.")
    queue = models.CharField(max_length=QUEUE_NAME_MAX_LENGTH, default="default")
    priority = models.SmallIntegerField(default=0, help_text="Higher runs first.")
    payload = models.JSONField(help_text="The call, as JSON; see jobs.payload.")
    status = models.CharField(max_length=10, choices=Status, default=Status.READY)
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts started so far.")
    max_attempts = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: JOBS['MAX_ATTEMPTS']."
    )
    max_run_time = models.FloatField(
        null=True, blank=True, help_text="Seconds; empty: JOBS['MAX_RUN_TIME']."
    )
    run_at = models.DateTimeField(default=timezone.now, help_text="Not run before this time.")
    locked_at = models.DateTimeField(null=True, blank=True, help_text="Start of the last attempt.")
    locked_by = models.CharField(
        max_length=255, blank=True, help_text="The worker of the last attempt."
    )
    lease = models.CharField(
        max_length=32,
        blank=True,
        default="",
        db_default="",
        editable=False,
        help_text="The last claim's token: every write of that claim's holder requires it.",
    )
    last_error = models.TextField(blank=True, help_text="The last error's class and message.")
    errors = models.JSONField(
        default=list, blank=True, help_text="The latest failed attempts, with tracebacks."
    )
    error_count = models.PositiveIntegerField(
        default=0,
        db_default=0,
        help_text="Failed attempts ever recorded, including those no longer kept.",
    )
    # NULL, not "": keyless jobs stay out of the key's indexes and constraint.
    unique_key = models.CharField(  # noqa: DJ001
        max_length=255,
        null=True,
        blank=True,
        help_text="While a job with this key waits, enqueueing another returns that one.",
    )
    concurrency_key = models.CharField(  # noqa: DJ001
        max_length=255,
        null=True,
        blank=True,
        help_text="Jobs sharing this key run at most concurrency_limit at a time.",
    )
    concurrency_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most jobs of the concurrency key ready or running."
    )
    cancel_requested_at = models.DateTimeField(
        null=True, blank=True, help_text="When cancellation of the running job was asked for."
    )
    result = models.JSONField(null=True, blank=True, help_text="What the job returned.")
    failed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    #: Statuses of jobs waiting for a worker.
    WAITING = (Status.READY, Status.SCHEDULED, Status.BLOCKED)
    #: Statuses of jobs that hold a slot of their concurrency key.
    HOLDING_SLOT = (Status.READY, Status.RUNNING)
    #: Statuses of jobs that are over: they never run again unless retried.
    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
    #: Failed attempts kept in ``errors`` (the oldest go first); ``error_count``
    #: counts them all.
    ERRORS_KEPT = 10
    #: The columns a claim returns: what running a job needs, not its history.
    RUN_FIELDS = (
        "id", "name", "queue", "priority", "payload", "status", "attempts", "max_attempts",
        "max_run_time", "run_at", "locked_at", "locked_by", "lease", "created_at",
        "unique_key", "concurrency_key", "concurrency_limit", "cancel_requested_at",
    )  # fmt: skip

    #: True on the Job an enqueue with a unique_key returned instead of adding
    #: one: the job that already waited with that key.
    already_waiting = False

    objects = JobQuerySet.as_manager()

    class Meta:
        indexes = [
            # Claiming reads only ready rows, so finished history costs nothing.
            models.Index(
                fields=["-priority", "run_at", "id"],
                condition=Q(status="ready"),
                name="jobs_job_ready_idx",
            ),
            # The oldest due job's wait.
            models.Index(
                fields=["run_at"], condition=Q(status="ready"), name="jobs_job_ready_run_at_idx"
            ),
            # Promotion and the next wake-up read the soonest scheduled jobs.
            models.Index(
                fields=["run_at", "id"],
                condition=Q(status="scheduled"),
                name="jobs_job_scheduled_idx",
            ),
            models.Index(
                fields=["locked_by"], condition=Q(status="running"), name="jobs_job_running_idx"
            ),
            models.Index(
                fields=["finished_at"],
                condition=Q(status="succeeded"),
                name="jobs_job_succeeded_idx",
            ),
            models.Index(
                fields=["failed_at"], condition=Q(status="failed"), name="jobs_job_failed_idx"
            ),
            models.Index(
                fields=["finished_at"],
                condition=Q(status="cancelled"),
                name="jobs_job_cancelled_idx",
            ),
            # Unblocking reads a key's blocked jobs in run order, and counts
            # the slots its ready and running jobs hold.
            models.Index(
                fields=["concurrency_key", "-priority", "run_at", "id"],
                condition=Q(status="blocked"),
                name="jobs_job_blocked_idx",
            ),
            models.Index(
                fields=["concurrency_key"],
                condition=Q(status__in=["ready", "running"], concurrency_key__isnull=False),
                name="jobs_job_slots_idx",
            ),
        ]
        constraints = [
            # One waiting job per unique key: the database enforces it, so
            # concurrent enqueues cannot both add one.
            models.UniqueConstraint(
                fields=["unique_key"],
                condition=Q(status__in=["ready", "scheduled", "blocked"], unique_key__isnull=False),
                name="jobs_job_unique_waiting",
            ),
        ]

    def __str__(self):
        return f"Job {self.pk} {self.name}"

    def save(self, *args, **kwargs):
        self.updated_at = timezone.now()
        super().save(*args, **kwargs)

    @staticmethod
    def waiting_status(run_at, now, concurrency_key=None) -> "Job.Status":
        """Scheduled until ``run_at``; then ready, or blocked until a slot of
        its concurrency key is free (jobs.limits.unblock gives it one)."""
        if run_at > now:
            return Job.Status.SCHEDULED
        return Job.Status.BLOCKED if concurrency_key else Job.Status.READY

    def cancel(self) -> str:
        """Cancel this job: "cancelled" if it was waiting, "requested" if it
        runs (its worker stops it), "finished" if it was over already."""
        cancelled, asked = (
            Job.objects.using(self._state.db or "default").filter(pk=self.pk).cancel()
        )
        self.refresh_from_db(fields=["status", "finished_at", "cancel_requested_at", "updated_at"])
        return "cancelled" if cancelled else "requested" if asked else "finished"

    @property
    def last_traceback(self) -> str:
        return self.errors[-1].get("traceback", "") if self.errors else ""


class Worker(models.Model):
    """A live worker process; its heartbeat keeps its jobs its own."""

    class Kind(models.TextChoices):
        #: A process of its own: ``manage.py jobs work``.
        DEDICATED = "dedicated", "Dedicated process"
        #: Threads inside a web server's process (JOBS["IN_WEB"]).
        IN_WEB = "in-web", "Inside the web process"

    name = models.CharField(max_length=255, primary_key=True)
    kind = models.CharField(max_length=20, choices=Kind, default=Kind.DEDICATED)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    queues = models.JSONField(default=list, help_text="Empty: every queue.")
    concurrency = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField(default=timezone.now)
    last_heartbeat_at = models.DateTimeField(default=timezone.now)
    #: PostgreSQL: the key of a session advisory lock the worker holds on a
    #: direct connection while its process lives; None where it cannot.
    lock_key = models.BigIntegerField(null=True, blank=True, editable=False)

    def __str__(self):
        return self.name


class PausedQueue(models.Model):
    """Workers claim nothing from a queue while it has a row here."""

    queue = models.CharField(max_length=QUEUE_NAME_MAX_LENGTH, primary_key=True)
    paused_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.queue
