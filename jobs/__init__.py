"""A database-backed job queue for Django, after Ruby's delayed_job.

    from jobs import delay, enqueue, handle_asynchronously, Mailer

See the README for the whole API.
"""

__all__ = ["Mailer", "delay", "enqueue", "enqueue_many", "handle_asynchronously"]


def __getattr__(name):
    # Imported lazily: Django imports this package before its models exist.
    if name in __all__:
        from . import enqueueing

        return getattr(enqueueing, name)
    raise AttributeError(f"module 'jobs' has no attribute {name!r}")
