"""What the worker runs for the site: build a signup email, send it, record the outcome.

Module-level functions taking a ScheduledEmail id, so the queue stores plain
JSON and the worker may import them (signupdemo is an installed app). The
confirmation goes through the jobs API (``delay``); the reminder is a Django
``@task``, which the jobs backend stores in the same table: the site shows
both ways.
A send that raises is retried by the queue; the record stays "queued" until
a send succeeds, and the job row shows the attempts meanwhile.
"""

import logging

from django.tasks import task
from django.utils import timezone

from .mailers import SignupMailer
from .models import ScheduledEmail

logger = logging.getLogger(__name__)


def send_confirmation(scheduled_email_id: int) -> str:
    """Send the confirmation link, unless the address is confirmed already."""
    return _deliver(scheduled_email_id, ScheduledEmail.Kind.CONFIRMATION)


@task(queue_name="emails")
def send_reminder(scheduled_email_id: int) -> str:
    """Send the 'please confirm' reminder, but only to a still-unconfirmed account."""
    return _deliver(scheduled_email_id, ScheduledEmail.Kind.REMINDER)


def _deliver(scheduled_email_id: int, kind: str) -> str:
    scheduled = (
        ScheduledEmail.objects.select_related("user", "user__signup")
        .filter(pk=scheduled_email_id, kind=kind)
        .first()
    )
    if scheduled is None:
        # The account was deleted after the email was queued.
        logger.info("scheduled_email=%s kind=%s outcome=gone", scheduled_email_id, kind)
        return "gone"
    if scheduled.state != ScheduledEmail.State.QUEUED:
        # A retry after a crash that happened once the outcome was saved.
        return scheduled.state

    user = scheduled.user
    if user.signup.is_confirmed:
        return _record(scheduled, ScheduledEmail.State.SKIPPED, note="already confirmed")

    mailer = SignupMailer()
    message = getattr(mailer, kind)(user, site_url=scheduled.site_url)
    message.send(using=SignupMailer.mailer)
    return _record(scheduled, ScheduledEmail.State.SENT)


def _record(scheduled: ScheduledEmail, state: str, note: str = "") -> str:
    scheduled.state = state
    scheduled.note = note
    scheduled.finished_at = timezone.now()
    scheduled.save(update_fields=["state", "note", "finished_at"])
    logger.info(
        "scheduled_email=%s user=%s kind=%s outcome=%s%s",
        scheduled.pk,
        scheduled.user_id,
        scheduled.kind,
        state,
        f" reason={note.replace(' ', '-')}" if note else "",
    )
    return state
