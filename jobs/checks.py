"""System checks: a bad JOBS setting or database is reported at startup."""

from datetime import timedelta

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.db import connections

from .conf import SETTING_NAMES, jobs_settings

_POSITIVE_NUMBERS = (
    "SLEEP_DELAY",
    "POLL_INTERVAL",
    "HEARTBEAT_INTERVAL",
    "HEARTBEAT_TIMEOUT",
    "MAX_RUN_TIME",
    "INTERRUPT_GRACE",
    "CANCEL_GRACE",
    "DATABASE_TIMEOUT",
    "RECONNECT_DELAY",
    "RECORD_PATIENCE",
    "READ_AHEAD_SECONDS",
)


@register()
def check_jobs_setting(app_configs, **kwargs):
    configured = getattr(settings, "JOBS", {})
    if not isinstance(configured, dict):
        return [Error("JOBS must be a dict.", id="jobs.E001")]
    errors = [
        Error(
            f"Unknown JOBS setting {key!r}.",
            hint=f"Known settings: {', '.join(sorted(SETTING_NAMES))}.",
            id="jobs.E002",
        )
        for key in configured
        if key not in SETTING_NAMES
    ]
    config = jobs_settings()

    def invalid(name, expected):
        errors.append(
            Error(
                f"JOBS[{name!r}] must be {expected}, not {getattr(config, name)!r}.", id="jobs.E003"
            )
        )

    for name in _POSITIVE_NUMBERS:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            invalid(name, "a positive number of seconds")
    if not isinstance(config.MAX_ATTEMPTS, int) or config.MAX_ATTEMPTS < 1:
        invalid("MAX_ATTEMPTS", "a positive integer")
    if (
        not isinstance(config.DEFAULT_PRIORITY, int)
        or not -32768 <= config.DEFAULT_PRIORITY <= 32767
    ):
        invalid("DEFAULT_PRIORITY", "an integer from -32768 to 32767")
    if not isinstance(config.MAX_PAYLOAD_BYTES, int) or config.MAX_PAYLOAD_BYTES < 1024:
        invalid("MAX_PAYLOAD_BYTES", "an integer of at least 1024")
    for name in ("CONCURRENCY", "MAX_READ_AHEAD", "IN_WEB_CONCURRENCY"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            invalid(name, "a positive integer")
    if not isinstance(config.LISTEN_URL, bool | str):
        invalid("LISTEN_URL", "True, False or a postgres:// URL")
    if not isinstance(config.DEFAULT_QUEUE, str) or not config.DEFAULT_QUEUE:
        invalid("DEFAULT_QUEUE", "a non-empty string")
    if not isinstance(config.KEEP_SUCCEEDED, timedelta) or timedelta(0) > config.KEEP_SUCCEEDED:
        invalid("KEEP_SUCCEEDED", "a timedelta or seconds, zero or more")
    for name in ("DELAY_JOBS", "IN_WEB"):
        if not isinstance(getattr(config, name), bool):
            invalid(name, "True or False")
    if not all(isinstance(m, str) for m in config.ALLOWED_MODULES):
        invalid("ALLOWED_MODULES", "a list of module names")
    if not isinstance(config.SHUTDOWN_TIMEOUT, int | float) or config.SHUTDOWN_TIMEOUT < 0:
        invalid("SHUTDOWN_TIMEOUT", "zero or more seconds")
    if not errors and config.HEARTBEAT_TIMEOUT <= 2 * config.HEARTBEAT_INTERVAL:
        errors.append(
            Error(
                "JOBS['HEARTBEAT_TIMEOUT'] must exceed twice HEARTBEAT_INTERVAL, or live "
                "workers would be taken for dead.",
                id="jobs.E004",
            )
        )
    return errors


# Not tagged "database": it reads settings only, and Django runs database
# checks only with ``check --database``, where nobody would see a warning.
@register()
def check_database(app_configs, databases=None, **kwargs):
    """The database's vendor and, for SQLite, its transaction mode."""
    connection = connections["default"]
    if connection.vendor not in {"postgresql", "sqlite"}:
        return [
            Error(f"jobs supports PostgreSQL and SQLite, not {connection.vendor}.", id="jobs.E010")
        ]
    if connection.vendor == "sqlite":
        options = connection.settings_dict.get("OPTIONS", {})
        if options.get("transaction_mode") != "IMMEDIATE":
            return [
                Warning(
                    "SQLite without transaction_mode IMMEDIATE: web and worker writing "
                    "at once can fail with 'database is locked'.",
                    hint='Set DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE" '
                    "and journal_mode=WAL in init_command.",
                    id="jobs.W011",
                )
            ]
    return []
