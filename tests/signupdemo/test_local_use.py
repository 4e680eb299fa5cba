"""Local use: `make run` on a free port, only what it needs, and a staff user in one command."""

import os
import pty
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]


def make_dry_run(target: str, **env: str) -> str:
    """The commands `make TARGET` would run, every prerequisite included (-B), none run (-n)."""
    result = subprocess.run(
        ["make", "-n", "-B", target],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k != "PORT"}, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def check_port(port: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scripts/check_port.py", str(port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_make_run_serves_on_8000_and_port_overrides():
    commands = make_dry_run("run")
    assert "honcho start -f Procfile -p 8000 web worker" in commands
    # The port is checked before anything is migrated or started.
    assert commands.index("check_port.py 8000") < commands.index("manage.py migrate")
    assert "-p 8123 " in make_dry_run("run", PORT="8123")


def test_gunicorn_defaults_to_port_8000(monkeypatch):
    import runpy

    monkeypatch.delenv("PORT", raising=False)
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["bind"] == ["0.0.0.0:8000"]


def test_a_busy_port_is_one_line_with_the_fix():
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = check_port(port)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"Port {port} is in use" in result.stderr
    assert f"make run PORT={port + 1}" in result.stderr


def test_a_free_port_passes_silently():
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]
    result = check_port(port)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_make_run_installs_runtime_packages_and_make_test_the_test_tools():
    run = make_dry_run("run")
    assert "pip install --quiet -r requirements-run.txt" in run
    assert "requirements-dev.txt" not in run
    assert "pip install --quiet -r requirements-dev.txt" in make_dry_run("test")
    # CI runs `make install`, then ruff from .venv.
    assert "pip install --quiet -r requirements-dev.txt" in make_dry_run("install")

    runtime = (ROOT / "requirements-run.txt").read_text()
    assert "-r requirements.txt" in runtime and "honcho==" in runtime
    for test_tool in ("playwright", "pytest", "time-machine", "ruff"):
        assert test_tool not in runtime
        assert test_tool not in (ROOT / "requirements.txt").read_text()
    assert "-r requirements-run.txt" in (ROOT / "requirements-dev.txt").read_text()


class Terminal:
    """A command run at a pseudo-terminal, as a person runs it: prompts read, answers typed."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: its terminal is the pty, so getpass reads from it
            os.chdir(ROOT)
            os.execve(argv[0], argv, env)
        self.seen = self.pending = ""

    def expect(self, text: str, timeout: float = 30) -> None:
        """Wait for ``text`` in output not yet matched; a match consumes what precedes it."""
        deadline = time.monotonic() + timeout
        while text not in self.pending:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"waited for {text!r}; the terminal showed:\n{self.seen}"
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 1024).decode(errors="replace")
                except OSError:  # the child exited and closed the terminal
                    break
                self.seen += chunk
                self.pending += chunk
        assert text in self.pending, f"waited for {text!r}; the terminal showed:\n{self.seen}"
        self.pending = self.pending.split(text, 1)[1]

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\r")

    def wait(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


@pytest.mark.django_db(transaction=True)
def test_staff_user_from_the_terminal_logs_in_at_login(subprocess_env, client):
    env = {
        k: v
        for k, v in subprocess_env.items()
        if k not in {"DJANGO_SUPERUSER_EMAIL", "DJANGO_SUPERUSER_PASSWORD"}
    }
    terminal = Terminal([sys.executable, "manage.py", "create_staff_user"], env)
    terminal.expect("Email: ")
    terminal.type("not an address")
    terminal.expect("Enter a valid email address.")
    terminal.expect("Email: ")
    terminal.type("Staff@Example.com")
    terminal.expect("Password: ")
    terminal.type("short")
    terminal.expect("Password (again): ")
    terminal.type("short")
    terminal.expect("too short")
    terminal.expect("Password: ")
    terminal.type("a long staff password")
    terminal.expect("Password (again): ")
    terminal.type("a long staff password")
    terminal.expect("Staff user staff@example.com created")
    assert terminal.wait() == 0, terminal.seen
    assert "a long staff password" not in terminal.seen  # never echoed

    staff = get_user_model().objects.get()
    assert (staff.username, staff.is_staff, staff.is_superuser) == ("staff@example.com", True, True)
    response = client.post(
        reverse("login"), {"username": "Staff@Example.com", "password": "a long staff password"}
    )
    assert response.status_code == 302, response.content.decode()
    assert client.get("/jobs/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_without_a_terminal_or_variables_nothing_is_asked(manage):
    command = manage(
        "create_staff_user", env={"DJANGO_SUPERUSER_EMAIL": "", "DJANGO_SUPERUSER_PASSWORD": ""}
    )
    assert command.wait() == 0, command.output
    assert "No staff user created" in command.output
    assert not get_user_model().objects.exists()
