"""A database-backed job queue for Django, after Ruby's delayed_job.

    from jobs import delay, enqueue, handle_asynchronously, limits, Mailer

See the README for the whole API.
"""

__all__ = [
    "Mailer",
    "cancel_requested",
    "delay",
    "enqueue",
    "enqueue_many",
    "handle_asynchronously",
    "limits",
]


def __getattr__(name):
    # Imported lazily: Django imports this package before its models exist.
    if name == "cancel_requested":
        from . import running

        return running.cancel_requested
    if name in __all__:
        from . import enqueueing

        return getattr(enqueueing, name)
    raise AttributeError(f"module 'jobs' has no attribute {name!r}")
