"""Fixtures for the end-to-end tests: Chromium, a build, and the app's Procfile processes.

The app runs once on SQLite (the settings' default, a file in the build) and
once on a fresh PostgreSQL database, whatever DATABASE_URL pytest itself was
given: the app's processes get their own environment.

Without Chromium (Debian's `chromium` package, /usr/bin/chromium) or a
reachable PostgreSQL the tests skip, unless E2E_REQUIRED=1 (CI), which makes
them fail instead.
"""

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.processes import AppProcess, free_port, read_procfile

from .processes import (
    ROOT,
    base_env,
    build,
    postgres_database,
    postgres_server_url,
    read_postdeploy,
    run_once,
)

CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"

# Long enough for the browser to confirm first (the worker polls every 5 s on
# SQLite), short enough to watch the reminder go out.
REMINDER_DELAY = 30
STAFF_EMAIL = "staff@example.com"
STAFF_PASSWORD = secrets.token_urlsafe(16)


def unavailable(reason: str):
    """Skip, or fail when E2E_REQUIRED=1 says the environment must have it."""
    if os.environ.get("E2E_REQUIRED") == "1":
        pytest.fail(f"{reason} (E2E_REQUIRED=1, so this fails instead of skipping)")
    pytest.skip(reason)  # Chromium or PostgreSQL missing, outside CI


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not installed at {CHROMIUM}: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed: pip install -r requirements-dev.txt")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory) -> Path:
    logs = ARTIFACTS / "build"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    return build(tmp_path_factory.mktemp("build") / "app", logs)


@dataclass
class App:
    """The running app: its address, its environment and the processes started so far."""

    name: str
    url: str
    env: dict[str, str]
    cwd: Path
    logs: Path
    artifacts: Path
    procfile: dict[str, str] = field(init=False)
    processes: list[AppProcess] = field(default_factory=list)

    def __post_init__(self):
        self.procfile = read_procfile(self.cwd / "Procfile")

    def start(self, process_type: str) -> AppProcess:
        """Start the Procfile's ``process_type`` (web, worker) as a dyno would."""
        process = AppProcess(
            process_type,
            self.procfile[process_type],
            env=self.env,
            cwd=self.cwd,
            logs=self.logs,
        )
        self.processes.append(process)
        return process

    def run_once(self, name: str, command: str, **extra_env: str) -> str:
        """A one-off dyno: `heroku run <command>`."""
        return run_once(name, command, env={**self.env, **extra_env}, cwd=self.cwd, logs=self.logs)

    def kill_all(self) -> None:
        for process in self.processes:
            process.kill()

    def keep_logs(self) -> None:
        for log in self.logs.glob("*.log"):
            shutil.copyfile(log, self.artifacts / log.name)


def _app_databases() -> list[str]:
    """The app runs on the database this test run uses (CI runs the suite on
    both), or on those E2E_DATABASES lists, e.g. "sqlite,postgresql"."""
    if os.environ.get("E2E_DATABASES"):
        return os.environ["E2E_DATABASES"].split(",")
    return ["postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"]


@pytest.fixture(params=_app_databases())
def app(request, build_dir, tmp_path) -> Iterator[App]:
    """The release phase, app.json's postdeploy and the web process, on a fresh database.

    The worker is left to the test: until it runs, signups' emails wait in the queue.
    Process logs are written in this run's own tmp_path (so that two runs at
    once cannot mix them up) and copied to the artifacts at the end.
    """
    artifacts = ARTIFACTS / request.param
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True)
    with ExitStack() as stack:
        database = {}
        if request.param == "postgresql":
            import psycopg

            server = postgres_server_url()
            try:
                database["DATABASE_URL"] = stack.enter_context(postgres_database(server))
            except psycopg.OperationalError as error:
                unavailable(f"PostgreSQL is unreachable at {server}: {error}")
        else:
            # No DATABASE_URL: the settings' default SQLite file, fresh in the build.
            for stale in build_dir.glob("db.sqlite3*"):
                stale.unlink()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = base_env(
            PORT=str(port),
            DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
            DJANGO_DEBUG="0",
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            REMINDER_DELAY=str(REMINDER_DELAY),
            **database,
        )
        app = App(request.param, url, env, build_dir, tmp_path, artifacts)
        stack.callback(app.keep_logs)
        stack.callback(app.kill_all)

        app.run_once("release", app.procfile["release"])
        app.run_once(
            "postdeploy",
            read_postdeploy(build_dir / "app.json"),
            DJANGO_SUPERUSER_EMAIL=STAFF_EMAIL,
            DJANGO_SUPERUSER_PASSWORD=STAFF_PASSWORD,
        )
        web = app.start("web")
        web.wait_for_output(f"Listening at: http://0.0.0.0:{port}", timeout=30)
        yield app


@pytest.fixture
def open_browser(browser, app):
    """Open a fresh browser (its own cookies) on the app; returns its page and its problems."""
    from .pages import DESKTOP, BrowserProblems

    contexts = []

    def open_(label: str):
        context = browser.new_context(base_url=app.url, viewport=DESKTOP)
        contexts.append(context)
        return context.new_page(), BrowserProblems(context, label)

    yield open_
    for context in contexts:
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, show the tail of every app process's log beside the traceback."""
    report = yield
    app = item.funcargs.get("app") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(app, App):
        for process in app.processes:
            state = (
                "running" if process.popen.poll() is None else f"exit {process.popen.returncode}"
            )
            report.sections.append((f"{process.name} ({state}), log", process.output[-3000:]))
    return report
