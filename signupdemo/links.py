"""The site's public address for links in emails: SITE_URL, or the request's own origin.

A worker sends the email with no request in hand, so the address is decided
when the email is queued, from the request that queued it, and stored with it.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest


def site_url_for(request: HttpRequest) -> str:
    """``scheme://host`` for links in emails this request queues.

    SITE_URL wins when set. Otherwise the request's origin: its Host header as
    ALLOWED_HOSTS validated it (a refused host answers 400 before any view
    runs) and its scheme, https behind Heroku's router thanks to
    SECURE_PROXY_SSL_HEADER.
    """
    return settings.SITE_URL or request.build_absolute_uri("/").rstrip("/")


def resolve_site_url(site_url: str = "") -> str:
    """The address an email links to: the one it was queued with, else SITE_URL."""
    site_url = site_url or settings.SITE_URL
    if not site_url:
        raise ImproperlyConfigured(
            "No address for the links in this email: queue it from a request "
            "(site_url=site_url_for(request)) or set SITE_URL."
        )
    return site_url.rstrip("/")
