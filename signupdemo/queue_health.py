"""Whether the site's emails can go out now: a live worker serves their queue, and it is not paused.

The watch page and the home page say so in plain words, so that a visitor
whose email sits in the queue knows why and what starts it, rather than
watching "Queued" forever.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from jobs.conf import jobs_settings
from jobs.models import PausedQueue, Worker

from .signup import EMAIL_QUEUE

#: What to do about a missing worker, for a developer running the demo.
START_A_WORKER = (
    "On Heroku, run `heroku ps:scale worker=1`, or `heroku config:set JOBS_IN_WEB=1` to run "
    "jobs inside the web dyno; locally, `make run` starts one."
)


@dataclass(frozen=True)
class EmailQueueHealth:
    #: A worker that serves the emails queue heartbeated within HEARTBEAT_TIMEOUT.
    worker_alive: bool
    #: Staff paused the emails queue (jobs dashboard or admin).
    paused: bool

    def notices(self) -> list[dict]:
        """Why queued emails are not going out, and what to do, for the watch page.

        Each notice's ``parts`` are text, and commands marked ``code``: the page
        and its script both show them without parsing anything as HTML.
        """
        notices = []
        if not self.worker_alive:
            notices.append(
                {
                    "kind": "no-worker",
                    "title": "No worker is running, so no email is being sent.",
                    "parts": command_parts(
                        "Your emails wait safely in the queue and go out as soon as a "
                        f"worker starts. {START_A_WORKER}"
                    ),
                }
            )
        if self.paused:
            notices.append(
                {
                    "kind": "paused",
                    "title": "Sending email is paused.",
                    "parts": command_parts(
                        "Staff paused the emails queue on the jobs dashboard; your emails "
                        "wait in the queue and go out once it is resumed."
                    ),
                }
            )
        return notices


def command_parts(text: str) -> list[dict]:
    """Split ``text`` on backticks: every other part is a command."""
    return [
        {"text": part, "code": index % 2 == 1} for index, part in enumerate(text.split("`")) if part
    ]


def email_queue_health(now: datetime | None = None) -> EmailQueueHealth:
    """The state of the emails queue now: one query for live workers, one for the pause."""
    cutoff = (now or timezone.now()) - timedelta(seconds=jobs_settings().HEARTBEAT_TIMEOUT)
    served = Worker.objects.filter(last_heartbeat_at__gte=cutoff).values_list("queues", flat=True)
    # A worker's empty queue list means every queue.
    alive = any(not queues or EMAIL_QUEUE in queues for queues in served)
    paused = PausedQueue.objects.filter(queue=EMAIL_QUEUE).exists()
    return EmailQueueHealth(worker_alive=alive, paused=paused)
