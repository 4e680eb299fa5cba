"""A tiny, slow SMTP server on 127.0.0.1: every message takes DELAY seconds.

Just enough of RFC 5321 for Django's SMTP backend without TLS or AUTH:
EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT. One thread per connection, so
slow messages do not queue behind each other (a real provider's behaviour).
"""

import socketserver
import threading
import time


class _Handler(socketserver.StreamRequestHandler):
    timeout = 60

    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        server: SlowSMTPServer = self.server  # type: ignore[assignment]
        self.reply("220 bench.localhost slow SMTP ready")
        while line := self.rfile.readline():
            command = line.decode(errors="replace").strip().upper()
            if command.startswith("EHLO"):
                self.wfile.write(b"250-bench.localhost\r\n250 8BITMIME\r\n")
            elif command.startswith(("HELO", "MAIL", "RCPT", "RSET", "NOOP")):
                self.reply("250 OK")
            elif command == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                while (data := self.rfile.readline()) and data != b".\r\n":
                    pass
                time.sleep(server.delay)
                server.count_message()
                self.reply("250 OK queued")
            elif command == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")


class SlowSMTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, delay: float = 2.0):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.delay = delay
        self.messages = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, name="slow-smtp", daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        """For EMAIL_URL (see signupdemo.settings): plain SMTP, no STARTTLS."""
        return f"smtp://127.0.0.1:{self.port}?tls=0"

    def count_message(self) -> None:
        with self._lock:
            self.messages += 1

    def __enter__(self) -> "SlowSMTPServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.shutdown()
        self.server_close()
