"""Exit with one line saying what to do when `make run`'s port is taken.

Without this, gunicorn retries the bind five times and honcho then stops the
worker too: a screenful of errors for what is one fact and one fix. On macOS
(Monterey and later) port 5000 belongs to the AirPlay Receiver.

    python scripts/check_port.py 8000
"""

import socket
import sys


def port_is_free(port: int) -> bool:
    """Whether gunicorn could bind 0.0.0.0:port, as the Procfile's web process does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # gunicorn sets SO_REUSEADDR too, so a port left in TIME_WAIT by the
        # last `make run` counts as free, as it is for gunicorn.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def main(argv: list[str]) -> int:
    port = int(argv[1])
    if port_is_free(port):
        return 0
    airplay = " (on macOS, port 5000 is the AirPlay Receiver's)" if port == 5000 else ""
    print(
        f"Port {port} is in use by another program{airplay}: stop it, "
        f"or pick another port, e.g. `make run PORT={port + 1}`.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
