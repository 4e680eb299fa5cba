"""A database outage answers 503 "try again shortly", not a 500 or a traceback.

Heroku Postgres restarts for maintenance and failovers; while it is away every
query raises OperationalError (or InterfaceError on a connection that died
under us). That is a temporary state of the service, not a bug in the page,
so visitors get a plain 503 with Retry-After. The page is rendered without
the request: its context processors would reach for the session, and so the
database. Nothing needs restarting afterwards: Django closes a connection that
raised (``errors_occurred``) at the end of the request, and CONN_HEALTH_CHECKS
replaces a dead persistent one before the next request uses it.
"""

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

#: Seconds a client is asked to wait: a Postgres restart or failover takes tens of seconds.
RETRY_AFTER_SECONDS = 30


def database_unavailable_response() -> HttpResponse:
    """The 503 page, self-contained so it renders with no database at all."""
    response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    # An outage page must never be cached as the answer for this URL.
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    """Turn OperationalError / InterfaceError from a view into the 503 page, logged as an error."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        # One greppable line, no traceback: an outage is an operational event,
        # and hundreds of identical tracebacks would bury whatever else is logged.
        message = str(exception).strip().splitlines()[0] if str(exception).strip() else ""
        logger.error(
            "database_unavailable method=%s path=%s error=%s message=%r",
            request.method,
            request.path,
            type(exception).__name__,
            message,
        )
        return database_unavailable_response()
