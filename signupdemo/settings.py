"""
Settings for the site, read from the environment (12-factor).

Locally nothing needs setting: SQLite, the outbox mailer and a development
secret key are the defaults. On Heroku, DATABASE_URL comes from the Postgres
add-on and DJANGO_SECRET_KEY from app.json's generator.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# Heroku sets DYNO on every dyno; Heroku CI sets CI too, and runs the tests
# there with the local defaults.
IS_HEROKU_APP = "DYNO" in os.environ and "CI" not in os.environ

# Development conveniences (DEBUG, the fallback secret key) are opt-in, so a
# deploy that forgets a variable fails closed.
DEBUG = os.environ.get("DJANGO_DEBUG", "").lower() in {"1", "true", "yes"}

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if IS_HEROKU_APP:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY (app.json generates one).")
    SECRET_KEY = "django-insecure-local-development-key-do-not-use-in-production"


def _env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# The validated Host is the address in emails' links (see SITE_URL), so it is
# never "*". On Heroku the app's default domain is under .herokuapp.com; list
# custom domains in DJANGO_ALLOWED_HOSTS.
if IS_HEROKU_APP:
    ALLOWED_HOSTS = [".herokuapp.com", *_env_list("DJANGO_ALLOWED_HOSTS")]
else:
    ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Serve static files from gunicorn in development too, as in production.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "jobs",
    "signupdemo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A database outage while a view runs answers 503 (templates/503.html), not 500.
    "signupdemo.middleware.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "signupdemo.urls"
WSGI_APPLICATION = "signupdemo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL (Heroku Postgres) or a local SQLite file.
# Persistent connections with health checks save a connect per request and
# survive a database restart.
DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=600,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; IMMEDIATE takes
    # the write lock at BEGIN, so two writers queue on the busy timeout
    # instead of failing with "database is locked" halfway through.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Argon2id (signupdemo/hashers.py says why these parameters); the others
# only verify hashes made before, which are upgraded at the next login.
PASSWORD_HASHERS = [
    "signupdemo.hashers.OWASPArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    # The username is the email address; comparing with "email" alone makes
    # the error name what people typed ("too similar to the email address").
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ["email", "first_name", "last_name"]},
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Without collectstatic (local runs) WhiteNoise serves from the finders.
WHITENOISE_USE_FINDERS = DEBUG or not IS_HEROKU_APP
WHITENOISE_KEEP_ONLY_HASHED_FILES = True

# HTTPS on Heroku: the router terminates TLS and sets X-Forwarded-Proto.
if IS_HEROKU_APP:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", 3600))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = False

# Preloading HSTS is for a registrable domain you own, never a *.herokuapp.com
# subdomain, so the reminder to opt in (security.W021) is silenced.
SILENCED_SYSTEM_CHECKS = ["security.W021"]


# Email goes through Django 6.1's MAILERS. SMTP when configured (EMAIL_URL, or
# the Mailgun add-on's variables); otherwise the outbox mailer stores messages
# in the database, so the demo works with no mail add-on and can show them.
def _smtp_from_url(url):
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps", "submission"}:
        raise ImproperlyConfigured(f"EMAIL_URL must start with smtp:// or smtps://, not {url!r}")
    query = parse_qs(parts.query)
    return {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": parts.hostname,
            "port": parts.port or (465 if parts.scheme == "smtps" else 587),
            "username": unquote(parts.username or ""),
            "password": unquote(parts.password or ""),
            "use_ssl": parts.scheme == "smtps",
            "use_tls": parts.scheme != "smtps" and query.get("tls", ["1"])[0] != "0",
            "timeout": 20,
        },
    }


if os.environ.get("EMAIL_URL"):
    _default_mailer = _smtp_from_url(os.environ["EMAIL_URL"])
elif os.environ.get("MAILGUN_SMTP_SERVER"):
    _default_mailer = {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": os.environ["MAILGUN_SMTP_SERVER"],
            "port": int(os.environ.get("MAILGUN_SMTP_PORT", 587)),
            "username": os.environ.get("MAILGUN_SMTP_LOGIN", ""),
            "password": os.environ.get("MAILGUN_SMTP_PASSWORD", ""),
            "use_tls": True,
            "timeout": 20,
        },
    }
else:
    _default_mailer = {"BACKEND": "signupdemo.outbox.OutboxEmailBackend"}
MAILERS = {"default": _default_mailer}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Signup Demo <noreply@example.com>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Absolute links in emails. Empty: the origin (scheme and host) of the request
# that queued the email, as Django validated it (ALLOWED_HOSTS, and on Heroku
# X-Forwarded-Proto), stored with the email since the worker has no request.
# Set it to force one address whatever the visitor used.
SITE_URL = os.environ.get("SITE_URL", "").rstrip("/")

# Proxies in front of gunicorn that append to X-Forwarded-For: Heroku's router
# is one. The abuse limits take the client address from there, never from the
# client-supplied part of the header.
TRUSTED_PROXY_HOPS = int(os.environ.get("TRUSTED_PROXY_HOPS", 1 if IS_HEROKU_APP else 0))

# How long after signup the "please confirm" reminder goes out.
REMINDER_DELAY = timedelta(seconds=int(os.environ.get("REMINDER_DELAY", 24 * 60 * 60)))

# The job queue. Every key is optional; see the README for the full list.
_listen_url = os.environ.get("JOBS_LISTEN_URL", "")
JOBS = {
    "MAX_ATTEMPTS": int(os.environ.get("JOBS_MAX_ATTEMPTS", 25)),
    "KEEP_SUCCEEDED": timedelta(days=1),
    # JOBS_DELAY_JOBS=0 sends mail inside the request (debugging, benchmarks).
    "DELAY_JOBS": os.environ.get("JOBS_DELAY_JOBS", "1") != "0",
    # With PgBouncer in DATABASE_URL, set JOBS_LISTEN_URL to the direct URL
    # (or to 0 to poll); see "Scaling workers" in the README.
    "LISTEN_URL": False if _listen_url == "0" else (_listen_url or True),
    # JOBS_IN_WEB=1 runs jobs inside the web dyno's gunicorn workers too (see
    # gunicorn.conf.py): one dyno, no worker dyno. README: "One dyno".
    "IN_WEB": os.environ.get("JOBS_IN_WEB", "0") == "1",
}

# django.tasks (@task functions) goes through the same queue and workers.
TASKS = {
    "default": {
        "BACKEND": "jobs.backends.JobsBackend",
        "QUEUES": ["default", "emails"],
    }
}

# Logs go to stdout, where Heroku's log router (and honcho) collect them.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"level": "INFO"},
        "django.tasks": {"level": "WARNING"},
    },
}
