"""Abuse limits for the actions that send email, counted in the database.

Fixed windows, one row per (scope, hashed key, window): every gunicorn process
and dyno shares the counts, and a counter is bumped with one atomic UPDATE so
concurrent requests cannot both slip under the limit.
"""

import ipaddress
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import salted_hmac

from .models import RateLimitCounter


@dataclass(frozen=True)
class Limit:
    scope: str
    max_count: int
    window: timedelta


#: Signup form posts from one client, valid or not (slows guessing who has an account).
SIGNUP_ATTEMPTS_PER_CLIENT = Limit("signup-attempt:client", 30, timedelta(hours=1))
#: Accounts one client may create.
SIGNUPS_PER_CLIENT = Limit("signup:client", 10, timedelta(hours=1))
#: "Send a fresh link" requests from one client.
RESENDS_PER_CLIENT = Limit("resend:client", 10, timedelta(hours=1))
#: "Reset my password" requests from one client (as many as fresh links).
PASSWORD_RESETS_PER_CLIENT = Limit("password-reset:client", 10, timedelta(hours=1))
#: Account emails (signup, fresh link, password reset) to one address, whoever asks.
EMAILS_PER_ADDRESS = Limit("email:address", 3, timedelta(hours=1))

#: Counters older than this are deleted as new ones are made.
KEEP_COUNTERS = timedelta(days=1)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: Limit | None = None
    retry_after: int = 0  # seconds until the window that refused us ends


ALLOWED = Verdict(allowed=True)


def client_ip(request) -> str:
    """The client's address as our own proxies saw it.

    Behind Heroku's router REMOTE_ADDR is the router, and the router *appends*
    the address it accepted the connection from to X-Forwarded-For. Anything
    to the left of that came from the client and can be forged, so we count
    TRUSTED_PROXY_HOPS entries from the right (1 on Heroku, 0 = REMOTE_ADDR).
    """
    hops = getattr(settings, "TRUSTED_PROXY_HOPS", 0)
    if hops:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "")


def client_key(ip: str) -> str:
    """IPv6 clients get a whole /64 each, so they are counted by that network."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _window_start(now: datetime, window: timedelta) -> datetime:
    size = window.total_seconds()
    start = math.floor(now.timestamp() / size) * size
    return datetime.fromtimestamp(start, tz=UTC)


def _key_hash(limit: Limit, key: str) -> str:
    return salted_hmac("signupdemo.limits", f"{limit.scope}\0{key}", algorithm="sha256").hexdigest()


def hit(limit: Limit, key: str, now: datetime | None = None) -> Verdict:
    """Count one attempt against ``limit`` for ``key``; say whether it is allowed."""
    now = now or timezone.now()
    window_start = _window_start(now, limit.window)
    lookup = {"scope": limit.scope, "key_hash": _key_hash(limit, key), "window_start": window_start}
    with transaction.atomic():
        updated = RateLimitCounter.objects.filter(**lookup).update(count=F("count") + 1)
        if not updated:
            try:
                with transaction.atomic():
                    RateLimitCounter.objects.create(**lookup, count=1)
            except IntegrityError:
                # Another request created this window's row first; count on it.
                RateLimitCounter.objects.filter(**lookup).update(count=F("count") + 1)
        count = RateLimitCounter.objects.filter(**lookup).values_list("count", flat=True).get()
        RateLimitCounter.objects.filter(window_start__lt=now - KEEP_COUNTERS).delete()
    if count <= limit.max_count:
        return ALLOWED
    retry_after = math.ceil((window_start + limit.window - now).total_seconds())
    return Verdict(allowed=False, limit=limit, retry_after=max(retry_after, 1))


def hit_all(*checks: tuple[Limit, str]) -> Verdict:
    """Count against each (limit, key) in turn; stop at the first that refuses."""
    for limit, key in checks:
        verdict = hit(limit, key)
        if not verdict.allowed:
            return verdict
    return ALLOWED
