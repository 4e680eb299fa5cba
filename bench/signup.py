"""Section 6: signup latency through gunicorn while mail takes 2 s per message.

The real stack: gunicorn with gunicorn.conf.py (bound to 127.0.0.1 only),
the signup form fetched for its CSRF token and POSTed, a `jobs work` worker
sending through the slow SMTP server. Against it, the same view with
JOBS_DELAY_JOBS=0, which runs every enqueue inline, so the request itself
sends the confirmation *and* the reminder (two messages, 2 s each).

Each signup comes from its own address and its own client IP (X-Forwarded-For
with TRUSTED_PROXY_HOPS=1), so the abuse limits in signupdemo.limits, which
have no setting to raise them, never refuse a bench request.
"""

import http.client
import itertools
import re
import secrets
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

from django.contrib.auth.hashers import identify_hasher, make_password
from django.core.management import call_command

from jobs import enqueue_many
from jobs.models import Job

from .context import BenchContext, empty_job_table, progress
from .processes import BenchProcessError, ManagedProcess
from .smtp import SlowSMTPServer
from .stats import Figure, median, percentile
from .targets import SleepJob

MAIL_DELAY = 2.0
WARM_UP = 4  # first requests load templates: one per gunicorn thread or so
WARM_UP_INLINE = 1  # each takes 4 s; one loads the templates of a worker
# The venv's gunicorn, whatever PATH says.
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: Numbers for visitors' addresses and emails, never reused within a bench run.
_VISITORS = itertools.count(1)


class SignupClient:
    """One visitor after another: GET the form, POST it; times the POST only."""

    def __init__(self, port: int, run_id: str):
        self.port = port
        self.run_id = run_id
        self.count = 0

    def _request(self, method, path, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response, response.read().decode(errors="replace")
        finally:
            connection.close()

    def sign_up(self) -> float:
        """One signup by a new visitor; returns the POST's latency in ms."""
        self.count += 1
        n = next(_VISITORS)  # unique across clients: the abuse limits count per address
        ip = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
        forwarded = {"X-Forwarded-For": ip}
        response, page = self._request("GET", "/signup/", headers=forwarded)
        match = _CSRF_FIELD.search(page)
        cookie = next(
            (
                v.split(";")[0]
                for k, v in response.getheaders()
                if k.lower() == "set-cookie" and v.startswith("csrftoken=")
            ),
            None,
        )
        if response.status != 200 or not match or not cookie:
            raise BenchProcessError(f"GET /signup/ gave {response.status}: {page[:500]}")
        body = urlencode(
            {
                "csrfmiddlewaretoken": match.group(1),
                "email": f"bench-{self.run_id}-{n}@example.com",
                "name": f"Bench {n}",
                "password": "correct-horse-battery-staple",
            }
        )
        headers = {
            **forwarded,
            "Cookie": cookie,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        started = time.perf_counter()
        response, page = self._request("POST", "/signup/", body=body, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 302:
            raise BenchProcessError(f"POST /signup/ gave {response.status}: {page[:1000]}")
        return elapsed


def _gunicorn_command(port: int) -> list[str]:
    """The Procfile's web command, bound to 127.0.0.1 only."""
    return [
        GUNICORN,
        "signupdemo.wsgi",
        "--config",
        "gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{port}",
    ]


def _wait_until_serving(gunicorn: ManagedProcess, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not gunicorn.running():
            raise BenchProcessError(f"gunicorn exited: {gunicorn.describe()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise BenchProcessError(f"gunicorn not serving after {timeout}s: {gunicorn.describe()}")


@contextmanager
def serving(ctx: BenchContext, mode: str, *, worker: bool, warm_up: int, **env: str):
    """gunicorn on a free port (and a `jobs work` process if ``worker``),
    warmed up; yields a SignupClient for it."""
    port = _free_port()
    with ctx.processes(PORT=str(port), TRUSTED_PROXY_HOPS="1", **env) as group:
        gunicorn = group.start(f"gunicorn-{mode}", _gunicorn_command(port))
        if worker:
            group.manage(f"work-{mode}", "jobs", "work")
        _wait_until_serving(gunicorn, port)
        client = SignupClient(port, f"{mode}{secrets.token_hex(3)}")
        for _ in range(warm_up):
            client.sign_up()
        yield client


def measure(ctx: BenchContext, smtp: SlowSMTPServer, count: int, inline: bool) -> list[float]:
    """POST latencies (ms) of ``count`` signups, queued (with a worker) or inline."""
    mode = "inline" if inline else "queued"
    with serving(
        ctx,
        mode,
        worker=not inline,
        warm_up=WARM_UP_INLINE if inline else WARM_UP,
        EMAIL_URL=smtp.url,
        JOBS_DELAY_JOBS="0" if inline else "1",
    ) as client:
        latencies = []
        for n in range(count):
            latencies.append(client.sign_up())
            if (n + 1) % 50 == 0:
                progress(f"signup {mode}: {n + 1}/{count}")
    return latencies


#: The backlog drained while signups are timed, and what each job does: waits
#: like an SMTP call (I/O-bound, as the site's jobs are).
DRAIN_JOBS = 1000
DRAIN_JOB_SECONDS = 0.02


def measure_while_draining(ctx: BenchContext, in_web: bool) -> list[float]:
    """POST latencies (ms) of signups made while DRAIN_JOBS jobs drain, either
    in a `jobs work` process beside gunicorn or inside gunicorn's processes
    (JOBS_IN_WEB=1, no worker process)."""
    mode = "in-web" if in_web else "worker"
    empty_job_table()
    in_web_env = "1" if in_web else "0"
    with serving(ctx, mode, worker=not in_web, warm_up=WARM_UP, JOBS_IN_WEB=in_web_env) as client:
        drained = enqueue_many(SleepJob(n, DRAIN_JOB_SECONDS) for n in range(DRAIN_JOBS))
        backlog = Job.objects.filter(
            pk__in=[job.pk for job in drained],
            status__in=[*Job.WAITING, Job.Status.RUNNING],
        )
        latencies = []
        while backlog.exists() or len(latencies) < 20:
            latencies.append(client.sign_up())
        progress(f"signup while draining ({mode}): {len(latencies)} signups")
    return latencies


def run(ctx: BenchContext) -> list[Figure]:
    queued_count = ctx.size(200, 20)
    inline_count = ctx.size(10, 2)
    if not (ctx.static_root / "staticfiles.json").exists():
        call_command("collectstatic", interactive=False, verbosity=0)
    hashes = []
    for _ in range(3):
        started = time.perf_counter()
        make_password("correct-horse-battery-staple")
        hashes.append((time.perf_counter() - started) * 1000)
    queued, inline = [], []  # one list of latencies per run
    with SlowSMTPServer(MAIL_DELAY) as smtp:
        for attempt in range(ctx.runs):
            queued.append(measure(ctx, smtp, queued_count, inline=False))
            before = smtp.messages
            inline.append(measure(ctx, smtp, inline_count, inline=True))
            sent_inline = smtp.messages - before
            progress(
                f"signup run {attempt + 1}: queued p50 {median(queued[-1]):.0f} ms, "
                f"p95 {percentile(queued[-1], 95):.0f} ms; inline p50 "
                f"{median(inline[-1]):.0f} ms, {sent_inline} messages sent"
            )
            if sent_inline < 2 * (inline_count + WARM_UP_INLINE):
                raise AssertionError(f"inline signups sent {sent_inline} messages, expected 2 each")
    draining = {in_web: [] for in_web in (False, True)}
    for _ in range(ctx.runs):
        for in_web in draining:
            draining[in_web].append(measure_while_draining(ctx, in_web))
    queued_note = f"{queued_count} signups per run; a `jobs work` worker sends the mail"
    inline_note = (
        f"{inline_count} signups per run (4 s+ each); JOBS_DELAY_JOBS=0: the "
        "request sends the confirmation AND the reminder inline"
    )

    def per_run(runs, statistic):
        return [statistic(latencies) for latencies in runs]

    def p95(latencies):
        return percentile(latencies, 95)

    hasher = identify_hasher(make_password("x")).algorithm
    drain_note = (
        f"signups while {DRAIN_JOBS:,} jobs ({DRAIN_JOB_SECONDS * 1000:g} ms of I/O each) drain"
    )
    return [
        Figure(6, "signup POST p50, mail queued", "ms", per_run(queued, median), note=queued_note),
        Figure(
            6,
            "signup POST p95, mail queued",
            "ms",
            per_run(queued, p95),
            goal="signup_p95",
            note=queued_note,
        ),
        Figure(
            6,
            "signup POST p50, mail sent in the request",
            "ms",
            per_run(inline, median),
            goal="signup_inline",
            note=inline_note,
        ),
        Figure(
            6,
            "signup POST p95, mail sent in the request",
            "ms",
            per_run(inline, p95),
            note=inline_note,
        ),
        Figure(
            6,
            "signup POST p95 while jobs drain, in a worker process",
            "ms",
            per_run(draining[False], p95),
            note=f"{drain_note} in a `jobs work` process beside gunicorn",
        ),
        Figure(
            6,
            "signup POST p95 while jobs drain, inside the web process",
            "ms",
            per_run(draining[True], p95),
            goal="signup_p95",
            note=f"{drain_note} inside gunicorn's 2 processes (JOBS_IN_WEB=1, 2 threads each)",
        ),
        Figure(
            6,
            "of which: password hashing alone (make_password)",
            "ms",
            hashes,
            note=f"the site's hasher ({hasher}), in the bench process; part of every signup",
        ),
    ]
