"""The queue in Django's admin: jobs to look at and act on, never to edit.

A job's payload is what a worker will call, so the admin shows it and does
not offer to change it: every field is read-only and there is no add form.
Operators act through the same queryset verbs as the CLI and the dashboard,
which leave running jobs to their workers.
"""

from django.contrib import admin, messages
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from .dashboard.actions import VERBS, apply
from .dashboard.queries import pretty_json
from .models import Job, PausedQueue, Worker

TIMES = (
    "run_at", "created_at", "updated_at", "locked_at", "finished_at", "failed_at",
    "cancel_requested_at",
)  # fmt: skip


def _plural(n: int) -> str:
    return f"{n} job" if n == 1 else f"{n} jobs"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows only the queue writes: the change form is a view (no inputs, no
    save button), and deleting a job goes through "discard", which leaves
    running jobs alone."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = (
        "id", "status", "queue", "priority", "name", "attempts", "run_at", "short_last_error",
    )  # fmt: skip
    list_display_links = ("id", "name")
    list_filter = ("status", "queue")
    # "id__exact" is validated, so a word typed in the box never breaks the id lookup.
    search_fields = ("name", "id__exact")
    ordering = ("-id",)
    list_per_page = 50
    # The total over a large table is one COUNT too many on every page.
    show_full_result_count = False
    actions = ("retry_now", "run_at_once", "cancel", "discard")
    fieldsets = (
        (None, {"fields": ("id", "name", "status", "queue", "priority", "dashboard_link")}),
        ("Attempts", {"fields": ("attempts", "max_attempts", "max_run_time", "locked_by")}),
        ("Keys", {"fields": ("unique_key", "concurrency_key", "concurrency_limit")}),
        ("Times", {"fields": TIMES}),
        ("Payload", {"fields": ("pretty_payload", "pretty_result")}),
        ("Errors", {"fields": ("last_error", "error_tracebacks")}),
    )
    readonly_fields = (
        "id", "dashboard_link", "pretty_payload", "pretty_result", "error_tracebacks",
    )  # fmt: skip

    def has_operate_permission(self, request):
        return request.user.has_perm("jobs.change_job")

    def has_discard_permission(self, request):
        return request.user.has_perm("jobs.delete_job")

    # -- columns and fields -----------------------------------------------------

    @admin.display(description="last error")
    def short_last_error(self, job):
        return Truncator(job.last_error).chars(80)

    @admin.display(description="payload")
    def pretty_payload(self, job):
        return format_html('<pre class="jobs-json">{}</pre>', pretty_json(job.payload))

    @admin.display(description="result")
    def pretty_result(self, job):
        if job.result is None:
            return self.get_empty_value_display()
        return format_html('<pre class="jobs-json">{}</pre>', pretty_json(job.result))

    @admin.display(description="errors, newest first")
    def error_tracebacks(self, job):
        if not job.errors:
            return self.get_empty_value_display()
        return format_html_join(
            "",
            "<details{}><summary>Attempt {}: {}: {} <small>({} on {})</small></summary>"
            '<pre class="jobs-traceback">{}</pre></details>',
            (
                (
                    " open" if i == 0 else "",
                    error.get("attempt", "?"),
                    error.get("exception_class", ""),
                    Truncator(error.get("message", "")).chars(300),
                    error.get("at", ""),
                    error.get("worker", "") or "?",
                    error.get("traceback", "") or "(no traceback recorded)",
                )
                for i, error in enumerate(reversed(job.errors))
            ),
        )

    @admin.display(description="dashboard")
    def dashboard_link(self, job):
        try:
            url = reverse("jobs:job", args=[job.pk])
        except NoReverseMatch:
            return self.get_empty_value_display()
        return format_html('<a href="{}">Open in the jobs dashboard</a>', url)

    # -- actions ----------------------------------------------------------------

    @admin.action(
        description="Retry now (failed, cancelled or waiting jobs)", permissions=["operate"]
    )
    def retry_now(self, request, queryset):
        self._apply(request, queryset, "retry", "will run again now")

    @admin.action(description="Run at once (waiting jobs)", permissions=["operate"])
    def run_at_once(self, request, queryset):
        self._apply(request, queryset, "run_now", "due now")

    @admin.action(
        description="Cancel (waiting jobs; running ones are asked to stop)",
        permissions=["operate"],
    )
    def cancel(self, request, queryset):
        self._apply(request, queryset, "cancel", "cancelled, or asked to stop if running")

    @admin.action(description="Discard (not running jobs)", permissions=["discard"])
    def discard(self, request, queryset):
        self._apply(request, queryset, "discard", "discarded")

    def _apply(self, request, queryset, verb, outcome):
        """Run a queryset verb and say how many jobs it changed, and how many not."""
        selected = queryset.count()
        # The dashboard's path: locked in batches and logged, so the job's
        # history shows admin actions too.
        affected = apply(VERBS[verb], queryset, request.user, via="the admin")
        message = f"{_plural(affected)}: {outcome}."
        if affected < selected:
            message += f" {_plural(selected - affected)} left alone (running, or not eligible)."
        self.message_user(request, message, messages.SUCCESS if affected else messages.WARNING)


@admin.register(Worker)
class WorkerAdmin(ReadOnlyAdmin):
    """Live worker rows, written only by the workers themselves."""

    list_display = (
        "name", "hostname", "pid", "queues", "concurrency", "started_at", "last_heartbeat_at",
    )  # fmt: skip
    ordering = ("hostname", "started_at")


@admin.register(PausedQueue)
class PausedQueueAdmin(admin.ModelAdmin):
    """Add a row to pause a queue; delete it to resume."""

    list_display = ("queue", "paused_at")
    ordering = ("queue",)

    def get_readonly_fields(self, request, obj=None):
        # The queue name is the key: changing it would pause another queue.
        return ("queue", "paused_at") if obj else ("paused_at",)
