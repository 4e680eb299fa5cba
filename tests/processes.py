"""Small helpers shared by the suites that start the app's own processes."""

import socket
from pathlib import Path


def read_procfile(path: Path) -> dict[str, str]:
    """The Procfile's process types and their commands, as Heroku reads them."""
    commands = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, colon, command = line.partition(":")
        if not colon or not name.strip().isidentifier():
            raise ValueError(f"{path}: not a `name: command` line: {line!r}")
        commands[name.strip()] = command.strip()
    return commands


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
