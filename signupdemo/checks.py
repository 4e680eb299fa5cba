"""System checks for the site's own settings."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_site_url(app_configs, **kwargs):
    """Emails built by the worker link to SITE_URL; localhost links are useless in production."""
    site_url = getattr(settings, "SITE_URL", "")
    if site_url.startswith("https://"):
        return []
    return [
        Warning(
            f"SITE_URL is {site_url!r}, so confirmation links in emails will not work "
            "for visitors.",
            hint=(
                "Set SITE_URL to the site's public https:// address, e.g. "
                "`heroku config:set SITE_URL=https://your-app.herokuapp.com`, or enable "
                "`heroku labs:enable runtime-dyno-metadata`."
            ),
            id="signupdemo.W001",
        )
    ]
