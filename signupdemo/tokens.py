"""Signed values: the confirmation link's token and the 'who may watch' session entry.

Both use django.core.signing (HMAC with SECRET_KEY plus a timestamp), so they
cannot be forged or altered, and they expire.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core import signing
from django.urls import reverse

CONFIRM_SALT = "signupdemo.confirm"
WATCH_SALT = "signupdemo.watch"
WATCH_SESSION_KEY = "signupdemo_watch"

#: How long a confirmation link works. The reminder carries a fresh one.
CONFIRM_MAX_AGE = timedelta(days=3)
#: How long the browser that signed up may watch its emails without logging in.
WATCH_MAX_AGE = timedelta(days=7)


class InvalidLink(Exception):
    """A confirmation token that was altered, truncated or names no account."""


class ExpiredLink(InvalidLink):
    """A genuine confirmation token that is too old; knows its address for a fresh one."""

    def __init__(self, message: str, email: str = ""):
        super().__init__(message)
        self.email = email


@dataclass(frozen=True)
class Confirmation:
    user: object
    already_confirmed: bool


def make_confirmation_token(user) -> str:
    # The address is signed in too: a link stops working if the address changes.
    return signing.dumps({"u": user.pk, "e": user.email}, salt=CONFIRM_SALT, compress=True)


def read_confirmation_token(token: str) -> Confirmation:
    """The account a token confirms; raises ExpiredLink or InvalidLink."""
    try:
        data = signing.loads(token, salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)
    except signing.SignatureExpired as error:
        # The signature is genuine, only old: the address in it can be trusted.
        data = signing.loads(token, salt=CONFIRM_SALT)
        raise ExpiredLink(str(error), email=data.get("e", "")) from error
    except signing.BadSignature as error:
        raise InvalidLink(str(error)) from error
    user = (
        get_user_model()
        .objects.select_related("signup")
        .filter(pk=data.get("u"), email=data.get("e"), signup__isnull=False)
        .first()
    )
    if user is None:
        raise InvalidLink("no such account")
    return Confirmation(user=user, already_confirmed=user.signup.is_confirmed)


def confirmation_url(user, site_url: str) -> str:
    """The absolute link for emails, on ``site_url`` (scheme://host, no trailing slash)."""
    return site_url + reverse("confirm", args=[make_confirmation_token(user)])


def allow_watching(session, user) -> None:
    """Let this browser watch the user's emails before the account is confirmed."""
    session[WATCH_SESSION_KEY] = signing.dumps(user.pk, salt=WATCH_SALT)


def watched_user(request):
    """The account this request may watch: the logged-in user, else the one it signed up."""
    if request.user.is_authenticated:
        return request.user
    value = request.session.get(WATCH_SESSION_KEY)
    if not value:
        return None
    try:
        pk = signing.loads(value, salt=WATCH_SALT, max_age=WATCH_MAX_AGE)
    except signing.BadSignature:
        return None
    return get_user_model().objects.filter(pk=pk).first()
