"""Waking listening workers (PostgreSQL NOTIFY), shared by every layer that
makes jobs due: operators' verbs on the model, promotion, retries.

It sits below the models so that they can wake workers without knowing how
workers claim.
"""

from django.db import connections

#: The channel workers LISTEN on; its payload is the queue's name.
NOTIFY_CHANNEL = "jobs_enqueued"


def notify_enqueued(queues, using="default") -> None:
    """Wake listening workers for jobs made due by an UPDATE (PostgreSQL).

    Inserts need no call: a trigger notifies for them (migration 0003).
    """
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for queue in sorted(set(queues)):
                cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, queue])


#: The channel on which workers hear that cancellation of a running job was
#: requested; they look up which of their jobs it concerns.
CANCEL_CHANNEL = "jobs_cancel"


def notify_cancel_requested(using="default") -> None:
    """Tell listening workers to look for cancellation requests (PostgreSQL);
    workers that cannot listen look at every heartbeat."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [CANCEL_CHANNEL])
