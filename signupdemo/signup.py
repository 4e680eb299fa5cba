"""What a signup does to the database: the account and its queued emails, atomically.

The web request never talks to a mail server. It writes the user, the
ScheduledEmail records and their jobs in one transaction; the worker does
the sending. If anything fails, nothing is left behind: no user without its
email, no email for a user who was never saved.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from jobs import delay
from jobs.models import Job

from . import tasks
from .links import resolve_site_url
from .mailers import SignupMailer
from .models import ScheduledEmail, Signup

logger = logging.getLogger(__name__)

EMAIL_QUEUE = "emails"  # send_reminder's @task names it too
# Someone is waiting for the confirmation; the reminder can wait its turn.
CONFIRMATION_PRIORITY = 10
REMINDER_PRIORITY = 0


def schedule_email(
    user, kind: str, run_at: datetime | None = None, *, site_url: str = ""
) -> ScheduledEmail | None:
    """Record an email for ``user`` and queue the job that sends it, in the caller's transaction.

    None if a confirmation for ``user`` already waits in the queue (its
    unique key): nothing is recorded or queued then.

    ``site_url`` is the address its links point at (signupdemo.links.site_url_for);
    resolved now, so that a missing address fails here, not in the worker.
    """
    run_at = run_at or timezone.now()
    scheduled = ScheduledEmail.objects.create(
        user=user, kind=kind, run_at=run_at, site_url=resolve_site_url(site_url)
    )
    # The id, not the instance: if the account is deleted before the job
    # runs, the task finds nothing to do instead of failing to load it.
    if kind == ScheduledEmail.Kind.REMINDER:
        reminder = tasks.send_reminder.using(run_after=run_at, priority=REMINDER_PRIORITY)
        scheduled.job_id = int(reminder.enqueue(scheduled.pk).id)
    else:
        send = delay(
            tasks.send_confirmation,
            run_at=run_at,
            priority=CONFIRMATION_PRIORITY,
            queue=EMAIL_QUEUE,
            # One confirmation waiting per account: a resend meanwhile adds none.
            unique_key=f"confirmation:{user.pk}",
        )
        scheduled.job = send(scheduled.pk)
        if scheduled.job.already_waiting:
            scheduled.delete()
            logger.info("user=%s kind=%s outcome=already_queued", user.pk, kind)
            return None
    scheduled.save(update_fields=["job"])
    logger.info(
        "scheduled_email=%s user=%s kind=%s job=%s run_at=%s",
        scheduled.pk,
        user.pk,
        kind,
        scheduled.job_id,
        run_at.isoformat(),
    )
    return scheduled


@transaction.atomic
def sign_up(*, email: str, name: str, password: str, site_url: str = ""):
    """Create an inactive account and queue its confirmation now and its reminder later."""
    user = get_user_model().objects.create_user(
        username=email, email=email, password=password, first_name=name, is_active=False
    )
    now = timezone.now()
    Signup.objects.create(user=user, created_at=now)
    schedule_email(user, ScheduledEmail.Kind.CONFIRMATION, run_at=now, site_url=site_url)
    schedule_email(
        user,
        ScheduledEmail.Kind.REMINDER,
        run_at=now + settings.REMINDER_DELAY,
        site_url=site_url,
    )
    return user


def confirmation_sending(user) -> bool:
    """Whether a worker is sending ``user`` a confirmation email right now."""
    return ScheduledEmail.objects.filter(
        user=user, kind=ScheduledEmail.Kind.CONFIRMATION, job__status=Job.Status.RUNNING
    ).exists()


@dataclass(frozen=True)
class FreshLink:
    #: The unconfirmed account with that address, or None.
    user: object
    #: Whether a new confirmation email was queued (not when one is still on its way).
    queued: bool


@transaction.atomic
def send_fresh_link(email: str, site_url: str = "") -> FreshLink:
    """Queue a new confirmation email if ``email`` belongs to an unconfirmed account.

    Nothing is queued while an earlier confirmation still waits in the queue:
    a second copy would only arrive after it, and fill the outbox. Callers must
    not tell a visitor whether an account was found, so the form cannot be
    used to find out who has signed up.
    """
    signup = (
        Signup.objects.select_related("user")
        .filter(user__username=email, confirmed_at__isnull=True)
        .first()
    )
    if signup is None:
        return FreshLink(user=None, queued=False)
    if confirmation_sending(signup.user):
        return FreshLink(user=signup.user, queued=False)
    # While one waits in the queue, the confirmation job's unique key
    # decides, in the database: two requests at once cannot both queue one.
    scheduled = schedule_email(signup.user, ScheduledEmail.Kind.CONFIRMATION, site_url=site_url)
    return FreshLink(user=signup.user, queued=scheduled is not None)


@transaction.atomic
def send_password_reset(email: str, site_url: str = "") -> bool:
    """Queue a password reset email if ``email`` belongs to an active account with a password.

    Sent by a worker like every other email (SignupMailer.password_reset,
    which makes the token there). Returns whether one was queued; callers
    must not tell the visitor, so the form reveals no account.
    """
    user = get_user_model().objects.filter(username=email, is_active=True).first()
    if user is None or not user.has_usable_password():
        return False
    send = delay(SignupMailer, queue=EMAIL_QUEUE, priority=CONFIRMATION_PRIORITY)
    send.password_reset(user, site_url=resolve_site_url(site_url))
    logger.info("user=%s outcome=password_reset_queued", user.pk)
    return True


@transaction.atomic
def confirm(user) -> bool:
    """Mark the address confirmed and the account active; False if it already was."""
    confirmed = Signup.objects.filter(user=user, confirmed_at__isnull=True).update(
        confirmed_at=timezone.now()
    )
    if not confirmed:
        return False
    user.is_active = True
    user.save(update_fields=["is_active"])
    logger.info("user=%s outcome=confirmed", user.pk)
    return True
