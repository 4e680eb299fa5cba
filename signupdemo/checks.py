"""System checks for the site's own settings."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Tags, Warning, register

LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1", "0.0.0.0"}


@register(Tags.security, deploy=True)
def check_site_url(app_configs, **kwargs):
    """Links in emails follow the visitor's request unless SITE_URL forces one address.

    Empty is fine: each email links to the origin of the request that queued
    it. Only a SITE_URL that visitors cannot use (plain http, or this machine)
    breaks every link, so only that is reported.
    """
    site_url = getattr(settings, "SITE_URL", "")
    if not site_url:
        return []
    parts = urlsplit(site_url)
    if parts.scheme == "https" and parts.hostname and parts.hostname not in LOCAL_HOSTS:
        return []
    return [
        Warning(
            f"SITE_URL is {site_url!r}, so links in emails will not work for visitors.",
            hint=(
                "Set SITE_URL to the site's public https:// address, e.g. "
                "`heroku config:set SITE_URL=https://www.example.com`, or unset it "
                "(`heroku config:unset SITE_URL`) to link to the address each visitor used."
            ),
            id="signupdemo.W001",
        )
    ]
