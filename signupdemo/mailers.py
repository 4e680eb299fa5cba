"""The site's emails, each a text part and an HTML part from templates/emails/.

``SignupMailer().confirmation(user, site_url=...)`` builds a message without
sending it; ``delay(SignupMailer).confirmation(user, site_url=...)`` would build
and send it in the worker. ``site_url`` is the address the links point at
(signupdemo.links); without it, SITE_URL. The site goes through
signupdemo.tasks instead, which calls these methods and records each outcome
on its ScheduledEmail.
"""

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from jobs import Mailer

from .links import resolve_site_url
from .tokens import CONFIRM_MAX_AGE, confirmation_url


class SignupMailer(Mailer):
    mailer = "default"

    def confirmation(self, user, site_url: str = "") -> EmailMultiAlternatives:
        """The 'confirm your address' email with a fresh signed link."""
        site_url = resolve_site_url(site_url)
        return self._build(
            "confirmation",
            user,
            subject="Confirm your email address",
            site_url=site_url,
            confirm_url=confirmation_url(user, site_url),
        )

    def reminder(self, user, site_url: str = "") -> EmailMultiAlternatives:
        """The 'you have not confirmed yet' reminder; its link is fresh too."""
        site_url = resolve_site_url(site_url)
        return self._build(
            "reminder",
            user,
            subject="Reminder: confirm your email address",
            site_url=site_url,
            confirm_url=confirmation_url(user, site_url),
        )

    def password_reset(self, user, site_url: str = "") -> EmailMultiAlternatives:
        """A link to Django's password reset view, with a token of its own generator.

        The token is made here, in the worker, so no job row ever holds one;
        it stops working once the password changes or the user logs in.
        """
        site_url = resolve_site_url(site_url)
        uid = urlsafe_base64_encode(force_bytes(user.pk))
        token = default_token_generator.make_token(user)
        return self._build(
            "password_reset",
            user,
            subject="Reset your password",
            site_url=site_url,
            reset_url=site_url + reverse("password_reset_confirm", args=[uid, token]),
            reset_valid_days=round(settings.PASSWORD_RESET_TIMEOUT / 86400),
        )

    def _build(self, template: str, user, *, subject: str, **context) -> EmailMultiAlternatives:
        context = {
            "user": user,
            "name": user.first_name or user.email,
            "link_valid_days": CONFIRM_MAX_AGE.days,
            **context,
        }
        message = EmailMultiAlternatives(
            subject=subject,
            body=render_to_string(f"emails/{template}.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[user.email],
        )
        message.attach_alternative(
            render_to_string(f"emails/{template}.html", context), "text/html"
        )
        return message
