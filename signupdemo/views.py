"""Pages: home, signup, confirm, fresh link, watch (with its JSON feed), outbox, and accounts:
log in, log out, password reset."""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.views import (
    LoginView,
    LogoutView,
    PasswordResetConfirmView,
    PasswordResetView,
)
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse, reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from . import limits, signup
from .forms import (
    LoginForm,
    ResendForm,
    SignupForm,
    SitePasswordResetForm,
    SiteSetPasswordForm,
)
from .links import site_url_for
from .models import OutboxMessage, ScheduledEmail, Signup
from .outbox import outbox_enabled
from .queue_health import START_A_WORKER, command_parts, email_queue_health
from .tokens import ExpiredLink, InvalidLink, allow_watching, read_confirmation_token, watched_user

logger = logging.getLogger(__name__)

#: Words for ScheduledEmail.progress, shown on the watch page.
PROGRESS_LABELS = {
    "queued": "Queued",
    "retrying": "Retrying",
    "sending": "Sending…",
    "sent": "Sent",
    "skipped": "Skipped",
    "failed": "Failed",
    "cancelled": "Cancelled",
}
FINAL_PROGRESS = {"sent", "skipped", "failed", "cancelled"}
#: Progress of emails waiting for a worker.
WAITING_PROGRESS = {"queued", "retrying"}
#: Longest error message shown to a visitor: its first line, this many characters.
MAX_ERROR_LENGTH = 300


def error_summary(last_error: str) -> str:
    """The job's last error for people: class and message, never the traceback."""
    lines = last_error.strip().splitlines()
    first = lines[0] if lines else ""
    return first if len(first) <= MAX_ERROR_LENGTH else first[: MAX_ERROR_LENGTH - 1] + "…"


def too_many_requests(request: HttpRequest, verdict: limits.Verdict) -> HttpResponse:
    """The 429 page, with Retry-After so clients (and people) know when to come back."""
    minutes = max(1, round(verdict.retry_after / 60))
    logger.warning(
        "rate_limited scope=%s path=%s retry_after=%s",
        verdict.limit.scope,
        request.path,
        verdict.retry_after,
    )
    response = render(request, "429.html", {"retry_minutes": minutes}, status=429)
    response["Retry-After"] = str(verdict.retry_after)
    return response


def describe_delay(delay: timedelta) -> str:
    """'1 day', '2 minutes', '90 seconds': the reminder delay in words for the home page."""
    seconds = int(delay.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{pluralize(count)}"
    return f"{seconds} second{pluralize(seconds)}"


@require_GET
def home(request):
    context = {
        "watched": watched_user(request),
        "reminder_delay": describe_delay(settings.REMINDER_DELAY),
        "worker_alive": email_queue_health().worker_alive,
        "start_a_worker": command_parts(START_A_WORKER),
    }
    return render(request, "home.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def signup_view(request):
    # Bound on every POST, even an empty one: `request.POST or None` would
    # answer an empty post with a blank form and no word of what was missing.
    form = SignupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        client = limits.client_key(limits.client_ip(request))
        verdict = limits.hit(limits.SIGNUP_ATTEMPTS_PER_CLIENT, client)
        if not verdict.allowed:
            return too_many_requests(request, verdict)
        if form.is_valid():
            email = form.cleaned_data["email"]
            verdict = limits.hit_all(
                (limits.SIGNUPS_PER_CLIENT, client), (limits.EMAILS_PER_ADDRESS, email)
            )
            if not verdict.allowed:
                return too_many_requests(request, verdict)
            try:
                user = signup.sign_up(
                    email=email,
                    name=form.cleaned_data["name"],
                    password=form.cleaned_data["password"],
                    site_url=site_url_for(request),
                )
            except IntegrityError:
                form.add_duplicate_error()
            else:
                # Whoever was logged in here is logged out: this browser now
                # watches the new account, whose confirmation would otherwise
                # be readable nowhere (the watch page shows the logged-in user).
                if request.user.is_authenticated:
                    logout(request)
                allow_watching(request.session, user)
                messages.success(
                    request, f"Welcome, {user.first_name}! Your confirmation email is on its way."
                )
                return redirect("watch")
    duplicate = form.is_bound and form.has_error("email", "duplicate")
    return render(request, "signup.html", {"form": form, "duplicate": duplicate})


@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request, token: str):
    """GET shows a button; POST confirms. Link scanners that fetch URLs stay harmless."""
    try:
        confirmation = read_confirmation_token(token)
    except ExpiredLink as error:
        form = ResendForm(initial={"email": error.email})
        return render(request, "confirm_invalid.html", {"expired": True, "form": form}, status=410)
    except InvalidLink:
        return render(
            request, "confirm_invalid.html", {"expired": False, "form": ResendForm()}, status=400
        )

    user = confirmation.user
    if confirmation.already_confirmed:
        return render(request, "confirm_done.html", {"already": True, "account": user})
    if request.method == "POST":
        if not signup.confirm(user):
            return render(request, "confirm_done.html", {"already": True, "account": user})
        login(request, user)
        messages.success(request, "Your address is confirmed and you are logged in.")
        return redirect("watch")
    return render(request, "confirm.html", {"account": user})


@never_cache
@require_http_methods(["GET", "POST"])
def resend(request):
    """Ask for a fresh confirmation link; the answer never says whether an account exists."""
    if request.method != "POST":
        form = ResendForm(initial={"email": request.GET.get("email", "")})
        return render(request, "resend.html", {"form": form})

    form = ResendForm(request.POST)
    if not form.is_valid():
        return render(request, "resend.html", {"form": form})
    email = form.cleaned_data["email"]
    client = limits.client_key(limits.client_ip(request))
    verdict = limits.hit_all(
        (limits.RESENDS_PER_CLIENT, client), (limits.EMAILS_PER_ADDRESS, email)
    )
    if not verdict.allowed:
        return too_many_requests(request, verdict)
    fresh = signup.send_fresh_link(email, site_url=site_url_for(request))
    viewer = watched_user(request)
    # Only the account's own browser learns what happened; anyone else gets
    # the same "if it exists" page whatever the address.
    if fresh.user is not None and viewer is not None and viewer.pk == fresh.user.pk:
        if fresh.queued:
            messages.success(request, "A fresh confirmation link is on its way.")
        else:
            messages.info(
                request,
                "Your confirmation email is still queued, so no second one was: "
                "it goes out as soon as a worker takes it.",
            )
        return redirect("watch")
    return render(request, "resend_done.html", {"email": email})


def _watch_data(viewer) -> dict:
    # Both lists read one way, in the order things go out: oldest first. (The
    # inbox keeps the 50 newest messages, then puts them in that order.)
    emails = ScheduledEmail.objects.filter(user=viewer).select_related("job")
    newest = OutboxMessage.objects.filter(user=viewer).only("id", "subject", "to", "sent_at")[:50]
    outbox = reversed(newest)
    email_rows = []
    for item in emails:
        progress = item.progress
        email_rows.append(
            {
                "id": item.pk,
                "kind": item.kind,
                "label": item.get_kind_display(),
                "progress": progress,
                "progress_label": PROGRESS_LABELS[progress],
                "run_at": item.run_at,
                "next_attempt_at": item.next_attempt_at,
                # A cancelled email's time is its job's: the task never ran to say.
                "finished_at": (
                    item.job.finished_at if progress == "cancelled" else item.finished_at
                ),
                "attempts": item.job.attempts if item.job else None,
                "error": (
                    error_summary(item.job.last_error)
                    if item.job and progress in {"retrying", "failed"}
                    else ""
                ),
                "note": item.note,
            }
        )
    # Said only while something waits: then it is why nothing moves.
    waiting = any(row["progress"] in WAITING_PROGRESS for row in email_rows)
    return {
        "notices": email_queue_health().notices() if waiting else [],
        "emails": email_rows,
        "messages": [
            {
                "id": message.pk,
                "subject": message.subject,
                "to": message.to,
                "sent_at": message.sent_at,
                "url": reverse("outbox_message", args=[message.pk]),
            }
            for message in outbox
        ],
        "done": all(row["progress"] in FINAL_PROGRESS for row in email_rows),
    }


@never_cache
@require_GET
def watch(request):
    viewer = watched_user(request)
    if viewer is None:
        return redirect(f"{reverse('login')}?next={reverse('watch')}")
    data = _watch_data(viewer)
    context = {
        "viewer": viewer,
        # Accounts made outside the signup form (staff) have nothing to confirm.
        "confirmed": not Signup.objects.filter(user=viewer, confirmed_at__isnull=True).exists(),
        "emails": data["emails"],
        "notices": data["notices"],
        "inbox": data["messages"],
        "outbox_enabled": outbox_enabled(),
    }
    return render(request, "watch.html", context)


@never_cache
@require_GET
def watch_status(request):
    """The watch page's live feed: only ever the viewer's own emails and mail."""
    viewer = watched_user(request)
    if viewer is None:
        return JsonResponse({"error": "Sign up or log in to watch your emails."}, status=403)
    return JsonResponse(_watch_data(viewer))


@never_cache
@require_GET
def outbox_message(request, pk: int):
    viewer = watched_user(request)
    if viewer is None:
        return redirect(f"{reverse('login')}?next={request.path}")
    # Someone else's message is indistinguishable from a missing one.
    message = get_object_or_404(OutboxMessage, pk=pk, user=viewer)
    return render(request, "outbox_message.html", {"message": message})


class SiteLoginView(LoginView):
    form_class = LoginForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        user = form.unconfirmed_user
        if user is None:
            return super().form_valid(form)
        # The account stays off until its address is confirmed, so this is
        # no login. But the password is right: this browser may watch the
        # account's emails and ask for a fresh link, as the one that signed up
        # could (a lost session must not strand mail kept in the outbox).
        self.request.session.cycle_key()
        allow_watching(self.request.session, user)
        messages.info(
            self.request,
            "Your address is not confirmed yet, so your account is still switched off. "
            "Your confirmation email is below; if it is lost, send yourself a fresh link.",
        )
        return redirect("watch")


class SiteLogoutView(LogoutView):
    """POST logs out (Django's view); GET, e.g. a typed /logout/, shows the button, not a 405."""

    http_method_names = ["get", "post", "options"]
    template_name = "registration/logout.html"

    def get(self, request, *args, **kwargs):
        return render(request, self.template_name)


class SitePasswordResetView(PasswordResetView):
    """Django's password reset request, its email queued for a worker, under the fresh-link limits.

    The answer is the same "if it is an account, a link is on its way" page
    whether or not the address has an account (Django's own behaviour); the
    per-address limit counts every request, so a 429 tells nothing either.
    """

    form_class = SitePasswordResetForm
    template_name = "registration/password_reset_form.html"
    success_url = reverse_lazy("password_reset_done")

    def form_valid(self, form):
        email = form.cleaned_data["email"]
        client = limits.client_key(limits.client_ip(self.request))
        verdict = limits.hit_all(
            (limits.PASSWORD_RESETS_PER_CLIENT, client), (limits.EMAILS_PER_ADDRESS, email)
        )
        if not verdict.allowed:
            return too_many_requests(self.request, verdict)
        signup.send_password_reset(email, site_url=site_url_for(self.request))
        return HttpResponseRedirect(self.get_success_url())


class SitePasswordResetConfirmView(PasswordResetConfirmView):
    """Django's view and token check; the new password is validated as at signup."""

    form_class = SiteSetPasswordForm
    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("password_reset_complete")
