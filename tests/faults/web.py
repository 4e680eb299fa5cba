"""The Procfile's web process (gunicorn) for fault tests, and a browser-like HTTP client.

The web process runs exactly the Procfile's command, with the test's
environment (the test database, ``tests.settings``) and a free port; its log
goes to a file the test reads after stopping it.
"""

import html
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path

from tests.processes import free_port, read_procfile

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "faults"


class WebProcess:
    """gunicorn started from the Procfile, in its own process group, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("w")
        bin_dir = str(Path(sys.executable).parent)
        self.popen = subprocess.Popen(
            ["bash", "-c", read_procfile(ROOT / "Procfile")["web"]],
            cwd=ROOT,
            env={
                **env,
                "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
                "PORT": str(self.port),
                "DJANGO_DEBUG": "0",
            },
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while "Listening at:" not in self.output:
            if self.popen.poll() is not None:
                raise AssertionError(f"gunicorn exited early:\n{self.output[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"gunicorn not listening after {timeout}s:\n{self.output}")
            time.sleep(0.05)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM to the whole group, as Heroku does; returns gunicorn's exit status."""
        self._signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.popen.poll() is None:
            self._signal(signal.SIGKILL)
            self.popen.wait(timeout=10)
        self._log.close()

    def _signal(self, signum: int) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)


@contextmanager
def running_web(env: dict[str, str], log_path: Path, **config: str) -> Iterator[WebProcess]:
    """Start the web process with ``config`` added to ``env``; killed on the way out."""
    web = WebProcess({**env, **config}, log_path)
    try:
        web.wait_until_listening()
        yield web
    finally:
        web.kill()


# -- a browser-like client ------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str

    @property
    def location(self) -> str:
        return self.headers.get("location", "")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is an answer to look at, not to follow


CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@dataclass
class Visitor:
    """One browser: its own cookies; every request may claim a client address.

    ``forwarded_for`` is sent as X-Forwarded-For, which the site trusts only
    with TRUSTED_PROXY_HOPS=1 (as behind Heroku's router).
    """

    base_url: str
    forwarded_for: str | None = None
    timeout: float = 30
    cookies: CookieJar = field(default_factory=CookieJar)

    def __post_init__(self):
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirects()
        )

    def request(self, method: str, path: str, data: dict | None = None) -> Response:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base_url + path, data=body, method=method)
        if self.forwarded_for:
            request.add_header("X-Forwarded-For", self.forwarded_for)
        try:
            with self._opener.open(request, timeout=self.timeout) as reply:
                return Response(reply.status, _headers(reply), reply.read().decode())
        except urllib.error.HTTPError as error:
            with error:
                return Response(error.code, _headers(error), error.read().decode())

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post_form(self, path: str, data: dict, *, form_page: str | None = None) -> Response:
        """GET the form's page for a CSRF token, then POST ``data`` with it, as a browser would."""
        page = self.get(form_page or path)
        match = CSRF_FIELD.search(page.body)
        if match is None:
            return page  # no form to post (an error page): that is the answer
        return self.request(
            "POST", path, {**data, "csrfmiddlewaretoken": html.unescape(match.group(1))}
        )


def _headers(reply) -> dict[str, str]:
    return {name.lower(): value for name, value in reply.headers.items()}
