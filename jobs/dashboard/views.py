"""Dashboard views: staff only, reads from ``queries``, writes via the model verbs.

Every page can also render just its live region (``?partial=1``), which the
page's script fetches every few seconds; without JavaScript the pages are
complete and every action is an ordinary POST form.
"""

from datetime import UTC, datetime
from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.admin.models import ADDITION, DELETION, LogEntry
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from ..conf import jobs_settings
from ..models import Job, PausedQueue
from . import actions, arguments, queries

#: Seconds between live refreshes of a page's live region.
REFRESH_SECONDS = 3


def staff_required(view=None, *, permission: str = "jobs.view_job"):
    """Staff with ``permission`` only (superusers have every permission).

    Anonymous users go to log in; logged-in users who are not staff, or lack
    the permission, get 403. Pages need ``jobs.view_job``; actions name theirs.
    (Django's staff_member_required sends everyone to a login page, which
    loops for a user who is already logged in.)
    """
    if view is None:
        return lambda view: staff_required(view, permission=permission)

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            # After logging in, come back to the page, never to a POST-only URL.
            target = (
                request.get_full_path() if request.method == "GET" else reverse("jobs:overview")
            )
            return redirect_to_login(target)
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied("The jobs dashboard is for staff.")
        if not request.user.has_perm("jobs.view_job"):
            raise PermissionDenied("Seeing jobs takes the jobs.view_job permission.")
        if not request.user.has_perm(permission):
            raise PermissionDenied(f"This action takes the {permission} permission.")
        return view(request, *args, **kwargs)

    return never_cache(wrapper)


def _reverse_or_none(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def _chrome() -> dict:
    """What every whole page's header needs."""
    return {
        "admin_url": _reverse_or_none("admin:jobs_job_changelist"),
        # The site's own log-out view if it names one "logout", else the admin's.
        "logout_url": _reverse_or_none("logout") or _reverse_or_none("admin:logout"),
        "site_url": "/",
        "refresh_seconds": REFRESH_SECONDS,
        "statuses": Job.Status,
    }


def _page(request, template: str, context: dict) -> HttpResponse:
    """The whole page, or only its live region when the page script asks."""
    live = template.replace("jobs/", "jobs/_", 1)
    query = request.GET.copy()
    query.pop("partial", None)
    # Where action forms come back to: this page, never its live fragment.
    context["now"] = timezone.now()
    context["here"] = f"{request.path}?{query.urlencode()}" if query else request.path
    if request.GET.get("partial"):
        return render(request, live, context)
    query["partial"] = "1"
    context = {
        **_chrome(),
        "live_template": live,
        "live_url": f"{request.path}?{query.urlencode()}",
        **context,
    }
    return render(request, template, context)


# -- pages ------------------------------------------------------------------------


@staff_required
@require_GET
def overview(request):
    return _page(request, "jobs/overview.html", {"nav": "overview", "overview": queries.overview()})


@staff_required
@require_GET
def stats(request):
    """The overview as JSON, for monitoring and scripts."""
    data = queries.overview()
    return JsonResponse(
        {
            "at": data.now.isoformat(),
            "workers": {"live": data.workers, "stale": data.stale_workers},
            # Counts named in a queue's "capped" stopped at count_cap rows; the
            # estimates (PostgreSQL only) are the planner's, for scale.
            "count_cap": data.count_cap,
            "estimates": data.estimates,
            "total": data.total.as_json(),
            "queues": [q.as_json() for q in data.queues],
        }
    )


def _list_filters(data) -> dict[str, str]:
    """The list filters a request carries (GET for the page, POST for bulk actions),
    and the list's order (which changes what a page shows, not what matches)."""
    return {key: data.get(key, "").strip() for key in ("queue", "name", "range", "sort")}


def _filtered(status: str, filters: dict[str, str]):
    return queries.filtered_jobs(
        status, queue=filters["queue"], name=filters["name"], time_range=filters["range"]
    )


#: The bulk actions each list offers: the verbs that can change its jobs.
BULK_VERBS = {
    Job.Status.READY: ("cancel", "discard"),
    Job.Status.SCHEDULED: ("run_now", "cancel", "discard"),
    Job.Status.BLOCKED: ("cancel", "discard"),
    Job.Status.RUNNING: ("cancel",),
    Job.Status.SUCCEEDED: ("discard",),
    Job.Status.FAILED: ("retry", "discard"),
    Job.Status.CANCELLED: ("retry", "discard"),
}


@staff_required
@require_GET
def job_list(request, status):
    if status not in Job.Status.values:
        raise Http404(f"No job status {status!r}.")
    filters = _list_filters(request.GET)
    page = queries.job_page(
        status,
        queue=filters["queue"],
        name=filters["name"],
        time_range=filters["range"],
        sort=filters["sort"],
        after=request.GET.get("after", ""),
    )
    filters = {k: v for k, v in filters.items() if v}
    next_url = (
        f"{request.path}?{urlencode({**filters, 'after': page.next_cursor})}"
        if page.next_cursor
        else None
    )
    first_url = f"{request.path}?{urlencode(filters)}" if filters else request.path
    user = request.user
    verbs = [
        actions.VERBS[name]
        for name in BULK_VERBS[status]
        if user.has_perm(actions.VERBS[name].permission)
    ]
    context = {
        "nav": status,
        "status": Job.Status(status),
        "page": page,
        "queue": filters.get("queue", ""),
        "name": filters.get("name", ""),
        "range": filters.get("range", ""),
        "sort": filters.get("sort", ""),
        "filtered": bool({k for k in filters if k != "sort"}),
        "is_first_page": not request.GET.get("after"),
        "next_url": next_url,
        "first_url": first_url,
        "bulk_verbs": verbs,
    }
    if not request.GET.get("partial"):
        # The filters' choices are for the form around the live region only.
        context["choices"] = queries.filter_choices()
        context["time_ranges"] = queries.time_range_choices(status)
        context["sorts"] = queries.sort_choices(status)
    return _page(request, "jobs/job_list.html", context)


@staff_required
@require_GET
def task(request):
    """One task name's page (``?name=``), or without a name the names to choose from."""
    name = request.GET.get("name", "").strip()
    if not name:
        return _page(
            request,
            "jobs/tasks.html",
            {
                "nav": "tasks",
                "choices": queries.filter_choices(),
                "choice_rows": queries.CHOICE_ROWS,
            },
        )
    return _page(
        request,
        "jobs/task.html",
        {
            "nav": "tasks",
            "task": queries.task_stats(name),
            "sample_rows": queries.TASK_SAMPLE,
            "count_cap": queries.COUNT_CAP,
        },
    )


@staff_required
@require_GET
def job_detail(request, pk):
    job = get_object_or_404(Job, pk=pk)
    return _page(
        request,
        "jobs/job_detail.html",
        {
            "nav": job.status,
            "job": job,
            "call": arguments.arguments(job.payload),
            "payload": queries.pretty_json(job.payload),
            "result": queries.pretty_json(job.result) if job.result is not None else None,
            "attempts": queries.attempts(job, timezone.now()),
            "max_attempts": job.max_attempts or jobs_settings().MAX_ATTEMPTS,
            "forgotten_errors": max(job.error_count - len(job.errors), 0),
            "errors_kept": Job.ERRORS_KEPT,
            "history": actions.history(job.pk),
            "can_retry": job.status in (Job.Status.FAILED, Job.Status.CANCELLED)
            or (job.status in Job.WAITING and job.attempts > 0),
            "can_reschedule": job.status in (Job.Status.FAILED, *Job.WAITING),
            "can_cancel": _cancellable(job),
            "cancel_grace": jobs_settings().CANCEL_GRACE,
        },
    )


def _cancellable(job: Job) -> bool:
    """Waiting, or running and not yet asked to stop."""
    return job.status in Job.WAITING or (
        job.status == Job.Status.RUNNING and job.cancel_requested_at is None
    )


@staff_required
@require_GET
def workers(request):
    return _page(request, "jobs/workers.html", {"nav": "workers", "workers": queries.workers()})


# -- actions ----------------------------------------------------------------------


def _back(request, fallback: str):
    """Redirect to the form's ``next`` if it is one of our own URLs."""
    return redirect(_safe_next(request, fallback))


#: The form field that says a destructive action was confirmed: the page's
#: script adds it when its dialog is answered yes, the confirmation page
#: (what a POST without it gets) carries it.
CONFIRMED = "confirmed"


def _confirmation(request, *, title: str, consequence: str, button: str, back: str):
    """The page that asks before a destructive action: what will happen, and a
    form that posts the same fields again, confirmed, or a way back."""
    fields = [
        (key, value)
        for key, values in request.POST.lists()
        if key not in ("csrfmiddlewaretoken", CONFIRMED)
        for value in values
    ]
    context = {
        **_chrome(),
        "nav": "",
        "title": title,
        "consequence": consequence,
        "button": button,
        "action": request.path,
        "fields": fields,
        "confirmed_field": CONFIRMED,
        "back": back,
    }
    return render(request, "jobs/confirm.html", context)


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return fallback
    return target


#: What a destructive verb does to one job, by the job's status, for the
#: confirmation page: (title, consequence, button).
def _one_job_question(verb_name: str, job: Job) -> tuple[str, str, str]:
    pk = job.pk
    if verb_name == "discard":
        return (
            f"Discard job #{pk}?",
            f"Job #{pk} ({job.name}, {job.status}) is deleted: it never runs again, and its "
            "arguments, errors and result go with it. This cannot be undone.",
            f"Discard job #{pk}",
        )
    if job.status == Job.Status.RUNNING:
        return (
            f"Ask job #{pk} to stop?",
            f"Job #{pk} ({job.name}) is running. Its worker asks it to stop now and "
            f"interrupts it if it still runs {jobs_settings().CANCEL_GRACE:g} s later; "
            "it then ends cancelled, with no retry.",
            f"Ask job #{pk} to stop",
        )
    return (
        f"Cancel job #{pk}?",
        f"Job #{pk} ({job.name}, {job.status}) will not run: it is kept as cancelled, "
        "and can be retried later.",
        f"Cancel job #{pk}",
    )


def _one_job_action(verb_name: str, done, refused: str, fallback_to_list: bool = False):
    """A view applying one of ``actions.VERBS`` to one job, logged, with a message either way.

    ``done`` is the message's text, or a function of the job's status before
    the action giving it. A destructive verb first asks, unless the form says
    it was confirmed.
    """
    verb = actions.VERBS[verb_name]

    @staff_required(permission=verb.permission)
    @require_POST
    def action(request, pk):
        job = Job.objects.filter(pk=pk).only("id", "name", "status", "cancel_requested_at").first()
        if job is None:
            messages.warning(request, f"Job {pk} no longer exists.")
            return _back(request, reverse("jobs:overview"))
        one = Job.objects.filter(pk=pk)
        if (
            verb.destructive
            and not request.POST.get(CONFIRMED)
            and actions.eligible(verb, one).exists()
        ):
            title, consequence, button = _one_job_question(verb_name, job)
            back = _safe_next(request, reverse("jobs:job", args=[pk]))
            return _confirmation(
                request, title=title, consequence=consequence, button=button, back=back
            )
        affected = actions.apply(verb, one, request.user)
        if affected:
            text = done(job.status) if callable(done) else done
            messages.success(request, text.format(pk=pk))
        else:
            messages.warning(request, refused.format(pk=pk, status=job.status))
        if fallback_to_list and affected:
            fallback = reverse("jobs:list", args=[job.status])
        else:
            fallback = reverse("jobs:job", args=[pk])
        return _back(request, fallback)

    action.__name__ = f"{verb_name}_job"
    return action


retry_job = _one_job_action(
    "retry",
    done="Job {pk} will run again now, with fresh attempts.",
    refused="Job {pk} was not retried: it is {status}, and only failed, cancelled or waiting "
    "jobs can be.",
)
run_job_now = _one_job_action(
    "run_now",
    done="Job {pk} is due now.",
    refused="Job {pk} was not moved: it is {status}, and only waiting jobs can be run now.",
)
discard_job = _one_job_action(
    "discard",
    done="Job {pk} was discarded.",
    refused="Job {pk} was not discarded: it is running; its worker owns it until it finishes.",
    fallback_to_list=True,
)
cancel_job = _one_job_action(
    "cancel",
    done=lambda status: (
        "Job {pk} was asked to stop: its worker interrupts it if it does not stop by itself."
        if status == Job.Status.RUNNING
        else "Job {pk} was cancelled: it will not run."
    ),
    refused="Job {pk} was not cancelled: it is {status}"
    " (finished, or running and already asked to stop).",
)


def _chosen_time(request) -> datetime:
    """The reschedule form's time: the browser's UTC instant (its script fills
    ``run_at_utc`` from the local time picked), else the typed time, read as
    UTC unless it names its offset."""
    text = request.POST.get("run_at_utc", "").strip() or request.POST.get("run_at", "").strip()
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadRequest(f"Not a time: {text!r}. Use YYYY-MM-DDTHH:MM.") from exc
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


@staff_required(permission="jobs.change_job")
@require_POST
def reschedule_job(request, pk):
    run_at = _chosen_time(request)
    if actions.reschedule(pk, run_at, request.user):
        when = run_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        messages.success(request, f"Job {pk} will run at {when}.")
    else:
        messages.warning(
            request, f"Job {pk} was not rescheduled: only failed or waiting jobs can be."
        )
    return _back(request, reverse("jobs:job", args=[pk]))


#: How a bulk action's outcome reads.
_BULK_DONE = {
    "retry": "will run again now, with fresh attempts",
    "run_now": "due now",
    "discard": "discarded",
    "cancel": "cancelled; they will not run",
}
_BULK_DONE_RUNNING = {"cancel": "asked to stop; their workers interrupt them if they do not"}


def _bulk_question(verb_name: str, status: str, jobs_word: str) -> tuple[str, str, str]:
    """(title, consequence, button) of a bulk destructive action's confirmation."""
    if verb_name == "discard":
        return (
            f"Discard {jobs_word}?",
            f"{jobs_word.capitalize()} are deleted: they never run again, and their arguments, "
            "errors and results go with them. This cannot be undone.",
            f"Discard {jobs_word}",
        )
    if status == Job.Status.RUNNING:
        return (
            f"Ask {jobs_word} to stop?",
            f"Their workers ask them to stop now and interrupt any still running "
            f"{jobs_settings().CANCEL_GRACE:g} s later; they then end cancelled, with no retry.",
            f"Ask {jobs_word} to stop",
        )
    return (
        f"Cancel {jobs_word}?",
        f"{jobs_word.capitalize()} will not run: they are kept as cancelled, and can be "
        "retried later.",
        f"Cancel {jobs_word}",
    )


@staff_required
@require_POST
def bulk_action(request, status):
    """A verb on the ticked jobs of a list, or on every job matching its filters."""
    if status not in Job.Status.values:
        raise Http404(f"No job status {status!r}.")
    name = request.POST.get("action", "")
    if name not in BULK_VERBS[status]:
        raise BadRequest(f"No bulk action {name!r} on {status} jobs.")
    verb = actions.VERBS[name]
    if not request.user.has_perm(verb.permission):
        raise PermissionDenied(f"This action takes the {verb.permission} permission.")
    filters = _list_filters(request.POST)
    jobs = _filtered(status, filters)
    back = reverse("jobs:list", args=[status])
    if request.POST.get("scope") != "all":
        try:
            ids = [int(pk) for pk in request.POST.getlist("ids")]
        except ValueError as exc:
            raise BadRequest("Job ids are numbers.") from exc
        if not ids:
            messages.warning(request, "No jobs were ticked: nothing was done.")
            return _back(request, back)
        # Ticked rows still match the list's status: a job that moved on since
        # the page was drawn is left alone.
        jobs = Job.objects.filter(status=status, pk__in=ids)
    label = Job.Status(status).label.lower()
    if verb.destructive and not request.POST.get(CONFIRMED):
        # Counted up to one past what a request changes: enough to say "more".
        found = actions.eligible(verb, jobs).order_by()[: actions.REQUEST_LIMIT + 1].count()
        if found:
            more = found > actions.REQUEST_LIMIT
            n = min(found, actions.REQUEST_LIMIT)
            jobs_word = f"{n:,}{'+' if more else ''} {label} job{'s' if found != 1 else ''}"
            title, consequence, button = _bulk_question(name, status, jobs_word)
            if more:
                consequence += (
                    f" This request changes the first {actions.REQUEST_LIMIT:,}; choose the"
                    " action again for the rest."
                )
            return _confirmation(
                request,
                title=title,
                consequence=consequence,
                button=button,
                back=_safe_next(request, back),
            )
    n = actions.apply(verb, jobs, request.user)
    jobs_word = f"{n} {label} job{'s' if n != 1 else ''}"
    done = (_BULK_DONE_RUNNING if status == Job.Status.RUNNING else _BULK_DONE).get(
        name, _BULK_DONE[name]
    )
    message = f"{jobs_word}: {done}."
    if n >= actions.REQUEST_LIMIT and actions.eligible(verb, jobs).exists():
        message += (
            f" It stopped there, {actions.REQUEST_LIMIT:,} at a time, to keep the request"
            " short: choose the action again for the rest."
        )
    messages.success(request, message)
    return _back(request, back)


def _queue_name(request) -> str:
    queue = request.POST.get("queue", "").strip()
    if not queue or len(queue) > PausedQueue._meta.get_field("queue").max_length:
        raise BadRequest("Name the queue to pause or resume.")
    return queue


# Pausing a queue is operating the jobs in it: the same permission as retrying.
@staff_required(permission="jobs.change_job")
@require_POST
def pause_queue(request):
    queue = _queue_name(request)
    paused, created = PausedQueue.objects.get_or_create(queue=queue)
    if created:
        LogEntry.objects.log_actions(
            request.user.pk, [paused], ADDITION, "Paused from the jobs dashboard."
        )
        messages.success(request, f"Queue {queue!r} is paused: workers claim nothing from it.")
    else:
        messages.info(request, f"Queue {queue!r} was already paused.")
    return _back(request, reverse("jobs:overview"))


@staff_required(permission="jobs.change_job")
@require_POST
def resume_queue(request):
    queue = _queue_name(request)
    paused = PausedQueue.objects.filter(queue=queue).first()
    if paused is not None:
        LogEntry.objects.log_actions(
            request.user.pk, [paused], DELETION, "Resumed from the jobs dashboard."
        )
        paused.delete()
        messages.success(request, f"Queue {queue!r} is running again.")
    else:
        messages.info(request, f"Queue {queue!r} was not paused.")
    return _back(request, reverse("jobs:overview"))
