"""django.tasks functions run by the jobs backend in the tests."""

import asyncio
import datetime

from django.tasks import task

from .models import Event


@task
def add(a, b):
    Event.objects.create(name="add", data={"a": a, "b": b})
    return a + b


@task(priority=50, queue_name="emails")
def send_digest(user_id):
    return {"sent_to": user_id}


@task
async def async_add(a, b):
    await asyncio.sleep(0)
    return a + b


@task(takes_context=True)
def with_context(context, fail_until=1):
    attempt = context.attempt
    Event.objects.create(name="context", data={"attempt": attempt, "id": context.task_result.id})
    if attempt < fail_until:
        raise ValueError(f"attempt {attempt} fails")
    return attempt


@task
def explode():
    raise KeyError("missing")


@task
def not_json():
    return datetime.date(2026, 1, 1)
