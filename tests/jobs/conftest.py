"""Fixtures for the jobs tests."""

import pytest
from django.tasks.signals import task_enqueued, task_finished, task_started


@pytest.fixture
def task_signals():
    """The task signals sent, in order: (name, sender, status, id, backend)."""
    received = []
    handlers = {}
    for signal, name in (
        (task_enqueued, "enqueued"),
        (task_started, "started"),
        (task_finished, "finished"),
    ):

        def handler(sender, task_result, name=name, **kwargs):
            received.append((name, sender, task_result.status, task_result.id, task_result.backend))

        handlers[signal] = handler
        signal.connect(handler)
    yield received
    for signal, handler in handlers.items():
        signal.disconnect(handler)
