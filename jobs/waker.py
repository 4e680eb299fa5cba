"""A wake-up call safe from signal handlers as well as from any thread."""

import os
import select
from contextlib import suppress


class Waker:
    """``wake()`` ends a ``wait()`` early. A pipe, not a lock: a signal handler
    runs between two bytecodes of the main thread, possibly while that thread
    holds a ``threading.Event``'s lock inside ``wait()``, and setting the
    same event from the handler would deadlock."""

    def __init__(self):
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def wake(self) -> None:
        with suppress(OSError):  # a full pipe already wakes the waiter
            os.write(self._write, b"!")

    def wait(self, timeout: float) -> None:
        try:
            select.select([self._read], [], [], max(0.0, timeout))
            while os.read(self._read, 512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def close(self) -> None:
        for fd in (self._read, self._write):
            with suppress(OSError):
                os.close(fd)
