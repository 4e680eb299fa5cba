"""A mail backend that keeps messages in the database instead of sending them.

The default mailer when no SMTP server is configured: the demo then works on
Heroku without a mail add-on, and the "watch your emails" page can show each
user the mail addressed to them.
"""

from email.utils import parseaddr

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction

from .models import OutboxMessage


class OutboxEmailBackend(BaseEmailBackend):
    """Store each message as an OutboxMessage row; takes no OPTIONS."""

    def send_messages(self, email_messages) -> int:
        rows = []
        for message in email_messages:
            recipients = message.recipients()
            if not recipients:
                continue
            message.message()  # Validates the headers, as a real send would.
            rows.append(
                OutboxMessage(
                    user=_account_for(recipients),
                    mailer=self.alias or "",
                    from_email=message.from_email,
                    to=", ".join(recipients),
                    subject=message.subject,
                    body_text=message.body if message.content_subtype == "plain" else "",
                    body_html=_html_part(message),
                )
            )
        with transaction.atomic():
            OutboxMessage.objects.bulk_create(rows)
        return len(rows)


def outbox_enabled(alias: str = "default") -> bool:
    """Whether mail sent through ``alias`` ends up in the outbox (so the site can show it)."""
    backend = settings.MAILERS.get(alias, {}).get("BACKEND", "")
    return backend == f"{__name__}.{OutboxEmailBackend.__qualname__}"


def _html_part(message) -> str:
    if message.content_subtype == "html":
        return message.body
    for alternative in getattr(message, "alternatives", []):
        content, mimetype = alternative[0], alternative[1]
        if mimetype == "text/html":
            return content
    return ""


def _account_for(recipients):
    """The first account whose (lowercased) address is among the recipients."""
    addresses = [parseaddr(recipient)[1].lower() for recipient in recipients]
    accounts = get_user_model().objects.filter(username__in=addresses)
    by_address = {account.username: account for account in accounts}
    return next((by_address[a] for a in addresses if a in by_address), None)
