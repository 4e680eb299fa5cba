"""A TCP proxy in front of the database that a test can cut and restore.

    with TcpProxy(("127.0.0.1", 5432)) as proxy:
        url = f"postgres://postgres@127.0.0.1:{proxy.port}/test"
        ...
        proxy.cut()      # every live connection closed, new ones refused
        proxy.freeze()   # connections stay open, but nothing goes through
        proxy.restore()  # connections go through again

Point a process's DATABASE_URL at ``proxy.port`` and it sees the database go
away and come back, as during a Postgres restart or failover, while the
server itself keeps running for everyone else.
"""

import selectors
import socket
import threading
import time
from contextlib import suppress

__all__ = ["TcpProxy"]


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``; ``cut()`` and ``restore()`` toggle an outage.

    While cut, the listening socket stays open (the port cannot be lost to
    another process) but every new connection is closed as soon as it is
    accepted, which clients see as the server going away before the handshake.
    """

    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1"):
        self.upstream = upstream
        self._listener = socket.create_server((host, 0))
        self.host, self.port = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._cut = threading.Event()
        self._frozen = threading.Event()
        self._closed = threading.Event()
        self.connections_accepted = 0
        self.connections_refused = 0
        self._acceptor = threading.Thread(target=self._accept_loop, name="tcpproxy", daemon=True)
        self._acceptor.start()

    @property
    def is_cut(self) -> bool:
        return self._cut.is_set()

    def cut(self) -> int:
        """Close every live connection and refuse new ones; returns how many were closed."""
        self._cut.set()
        with self._lock:
            live, self._live = self._live, set()
        for sock in live:
            _close(sock)
        return len(live) // 2  # a client and its upstream socket per connection

    def freeze(self) -> None:
        """Stop forwarding, closing nothing: every connection hangs, as when
        a failover leaves packets unanswered (no FIN, no RST)."""
        self._frozen.set()

    def restore(self) -> None:
        """Let new connections (and, after a freeze, bytes) through again."""
        self._cut.clear()
        self._frozen.clear()

    def close(self) -> None:
        self._closed.set()
        self.cut()
        _close(self._listener)
        self._acceptor.join(timeout=5)

    def __enter__(self) -> "TcpProxy":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            if self._cut.is_set():
                self.connections_refused += 1
                _close(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                # cut() may have run while we connected upstream: it must win.
                if self._cut.is_set():
                    self.connections_refused += 1
                    _close(client)
                    _close(server)
                    continue
                self._live.update((client, server))
            self.connections_accepted += 1
            threading.Thread(
                target=self._pump, args=(client, server), name="tcpproxy-pump", daemon=True
            ).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        """Copy bytes both ways until either side closes (or cut() closes both)."""
        peers = {client: server, server: client}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            try:
                while True:
                    if self._frozen.is_set():
                        time.sleep(0.05)
                        if client.fileno() < 0 or server.fileno() < 0:
                            return  # closed by cut()
                        continue
                    for key, _ in selector.select(timeout=0.5):
                        data = key.fileobj.recv(65536)
                        if not data:
                            return
                        peers[key.fileobj].sendall(data)
                    if client.fileno() < 0 or server.fileno() < 0:
                        return  # closed by cut()
            except (OSError, ValueError):
                return
            finally:
                with self._lock:
                    self._live.difference_update(peers)
                for sock in peers:
                    _close(sock)


def _close(sock: socket.socket) -> None:
    # shutdown() first: it wakes a thread blocked on the socket, close() alone may not.
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        sock.close()
