"""The site's own records: emails it scheduled, mail the outbox kept, rate-limit counters.

Job rows are the queue's business and succeeded ones are pruned after a day,
so what the site promised a user lives here, linked to its job while the job
row exists.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Signup(models.Model):
    """An account made through the signup form, and whether its address is confirmed.

    Kept apart from User.is_active, which staff may also turn off: a fresh
    confirmation link must never undo a deactivation.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="signup"
    )
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        state = "confirmed" if self.confirmed_at else "unconfirmed"
        return f"{self.user} ({state})"

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None


class ScheduledEmail(models.Model):
    """An email the site queued for a user, and what became of it."""

    class Kind(models.TextChoices):
        CONFIRMATION = "confirmation", "Confirmation link"
        REMINDER = "reminder", "Reminder to confirm"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Skipped"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scheduled_emails"
    )
    kind = models.CharField(max_length=20, choices=Kind)
    state = models.CharField(max_length=10, choices=State, default=State.QUEUED)
    # SET_NULL: the queue prunes succeeded jobs; our record outlives them.
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run_at = models.DateTimeField(help_text="When the email was scheduled to go out.")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True, help_text="Why it was skipped.")
    site_url = models.CharField(
        max_length=300,
        blank=True,
        help_text="scheme://host its links point at: the site's address when it was queued.",
    )

    class Meta:
        ordering = ["run_at", "id"]
        indexes = [models.Index(fields=["user", "run_at"], name="signupdemo_email_user_idx")]

    def __str__(self):
        return f"{self.get_kind_display()} for {self.user} ({self.state})"

    @property
    def progress(self) -> str:
        """Where the email is, for people: queued, retrying, sending, sent, skipped,
        failed or cancelled (a job waiting for a concurrency slot is still queued).

        Our own state is final once the task recorded an outcome; before that
        the job row (if still there) says whether it is running or gave up.
        """
        if self.state != self.State.QUEUED:
            return self.state
        job = self.job
        if job is None:
            return "queued"
        if job.status == "running":
            return "sending"
        if job.status == "failed":
            return "failed"
        if job.status == "cancelled":
            return "cancelled"
        if job.status in {"ready", "scheduled", "blocked"} and job.attempts:
            return "retrying"
        return "queued"

    @property
    def next_attempt_at(self):
        """When the worker will next try, or None once it is done."""
        if self.progress not in {"queued", "retrying"}:
            return None
        return self.job.run_at if self.job is not None else self.run_at


class OutboxMessage(models.Model):
    """A message the outbox mail backend 'sent' by keeping it here."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="outbox_messages",
        help_text="The account whose address the message went to, if any.",
    )
    mailer = models.CharField(max_length=100, blank=True, help_text="The MAILERS alias.")
    from_email = models.CharField(max_length=320)
    to = models.TextField(help_text="Recipients, comma separated (to, cc and bcc).")
    subject = models.CharField(max_length=998)
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-sent_at", "-id"]
        indexes = [models.Index(fields=["user", "sent_at"], name="signupdemo_outbox_user_idx")]

    def __str__(self):
        return f"{self.subject} → {self.to}"


class RateLimitCounter(models.Model):
    """How often one client or address did one action in one fixed time window.

    Kept in the database so every gunicorn process and dyno shares the count.
    The key is a hash, so the table holds no addresses or IPs in the clear.
    """

    scope = models.CharField(max_length=50)
    key_hash = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "key_hash", "window_start"], name="signupdemo_ratelimit_unique"
            )
        ]
        indexes = [models.Index(fields=["window_start"], name="signupdemo_ratelimit_win_idx")]

    def __str__(self):
        return f"{self.scope} {self.key_hash[:8]}… {self.count} since {self.window_start}"
