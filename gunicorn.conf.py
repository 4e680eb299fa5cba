"""gunicorn settings for the web process (Procfile: `web: gunicorn ... --config gunicorn.conf.py`).

Every timeout below is stated against Heroku's limits:
https://devcenter.heroku.com/articles/request-timeout and
https://devcenter.heroku.com/articles/dyno-shutdown-behavior
Heroku's Python buildpack may also pass settings through GUNICORN_CMD_ARGS,
which win over this file.
"""

import os

# Heroku gives each web dyno its port in $PORT; honcho (`make run`) does the same.
# Without it, Django's usual 8000 (macOS gives 5000 to its AirPlay Receiver).
bind = [f"0.0.0.0:{os.environ.get('PORT', '8000')}"]

# Threads suit this site: requests wait on the database, not the CPU.
worker_class = "gthread"

# The buildpack sets WEB_CONCURRENCY from the dyno's memory and CPUs.
workers = int(os.environ.get("WEB_CONCURRENCY", 2))

# Each thread keeps its own persistent database connection (CONN_MAX_AGE), so
# workers x threads, plus the job worker's, must fit Heroku Postgres
# essential-0's connection limit (about 20).
threads = int(os.environ.get("GUNICORN_THREADS", 4))

# Import Django once, before forking: less memory, faster boots.
preload_app = True

# Heroku's router gives up on a request after 30 s (error H12). A worker that
# has been silent for 20 s is killed first, so a stuck process is replaced
# rather than left holding threads. (With gthread this is a heartbeat, not a
# per-request limit.)
timeout = 20

# On restart or deploy Heroku sends SIGTERM and SIGKILLs 30 s later. 20 s lets
# in-flight requests finish with time to spare for the process to exit.
graceful_timeout = 20

# Heroku's Router 2.0 keeps idle connections to the dyno for 90 s. Holding ours
# open longer (100 s) means the router always closes first, so it never sends
# a request down a connection gunicorn is closing.
keepalive = 100

# Trust X-Forwarded-Proto from the router: the buildpack exports
# FORWARDED_ALLOW_IPS='*', since only the router can reach a dyno. Elsewhere
# the default (127.0.0.1) stands.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Access log to stdout, in logfmt, with the router's request id.
accesslog = "-"
access_log_format = (
    'gunicorn method=%(m)s path="%(U)s" status=%(s)s duration=%(M)sms '
    'request_id=%({x-request-id}i)s fwd="%({x-forwarded-for}i)s" user_agent="%(a)s"'
)


# JOBS_IN_WEB=1 (JOBS["IN_WEB"]): each worker process also runs jobs, in a
# couple of background threads, so one dyno is enough. They start after the
# fork (never in the master, never twice) and stop within graceful_timeout.


def post_worker_init(worker):
    from jobs.embedded import start_beside_web

    start_beside_web(lambda: worker.alive, worker.cfg.graceful_timeout)


def worker_exit(server, worker):
    from jobs.embedded import stop_beside_web

    stop_beside_web(worker.cfg.graceful_timeout)
