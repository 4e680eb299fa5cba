"""The Procfile's web process (gunicorn) for fault tests, and a browser-like HTTP client.

The web process runs exactly the Procfile's command, with the test's
environment (the test database, ``tests.settings``) and a free port; its log
goes to a file the test reads after stopping it.
"""

import html
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path

from tests.processes import AppProcess, free_port, read_procfile

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "faults"


class WebProcess(AppProcess):
    """gunicorn started from the Procfile on a free port, as a dyno would."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        logs.mkdir(parents=True, exist_ok=True)
        bin_dir = str(Path(sys.executable).parent)
        super().__init__(
            "web",
            read_procfile(ROOT / "Procfile")["web"],
            env={
                **env,
                "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
                "PORT": str(self.port),
                "DJANGO_DEBUG": "0",
            },
            cwd=ROOT,
            logs=logs,
        )


@contextmanager
def running_web(env: dict[str, str], logs: Path, **config: str) -> Iterator[WebProcess]:
    """Start the web process with ``config`` added to ``env``, logging to
    ``logs``/web.log; killed on the way out."""
    web = WebProcess({**env, **config}, logs)
    try:
        web.wait_for_output("Listening at:", timeout=30)
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
