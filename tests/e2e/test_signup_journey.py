"""A person signs up in a real browser and watches the real worker send the emails.

The app runs as on Heroku (release phase, postdeploy, then the Procfile's web
and worker processes); see conftest.py. Every wait is for an event the page
or a process shows, never a fixed sleep.
"""

import re
import shlex

import pytest
from playwright.sync_api import Page, expect

from .conftest import REMINDER_DELAY, STAFF_EMAIL, STAFF_PASSWORD
from .pages import Screenshots

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"
CONFIRMATION_SUBJECT = "Confirm your email address"
REMINDER_SUBJECT = "Reminder: confirm your email address"
# The worker polls every 5 s on SQLite (PostgreSQL wakes it at once).
SEND_TIMEOUT = 20_000
REMINDER_TIMEOUT = (REMINDER_DELAY + 20) * 1000
# Heroku sends SIGKILL 30 s after SIGTERM.
SHUTDOWN_TIMEOUT = 30
# The README's screenshots (E2E_UPDATE_SCREENSHOTS=1 refreshes docs/screenshots/).
README_SHOTS = {"home", "signup", "watch", "email", "dashboard"}
README_PHONE_SHOTS = {"watch"}

# A confirmation email for Ben whose job gave up, as if the mail server had
# been down for all its attempts. Retrying it must deliver the email.
FAILED_JOB_SCRIPT = """
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from jobs.models import Job
from signupdemo.models import ScheduledEmail
from signupdemo.signup import schedule_email

user = get_user_model().objects.get(username="ben@example.com")
later = timezone.now() + timedelta(days=365)
scheduled = schedule_email(user, ScheduledEmail.Kind.CONFIRMATION, run_at=later)
now = timezone.now()
Job.objects.filter(pk=scheduled.job_id).update(
    status="failed", attempts=25, failed_at=now, finished_at=now,
    last_error="SMTPServerDisconnected: Connection unexpectedly closed",
    errors=[{"exception_class": "smtplib.SMTPServerDisconnected",
             "message": "Connection unexpectedly closed", "traceback": "",
             "attempt": 25, "worker": "", "at": now.isoformat()}],
)
print(f"failed_job={scheduled.job_id}")
"""


def email_row(page: Page, label: str):
    """One email on the watch page, by its label ("Confirmation link", "Reminder to confirm")."""
    return page.locator(".email-item").filter(has=page.get_by_role("heading", name=label))


def fill_signup_form(page: Page, *, email: str, name: str) -> None:
    page.get_by_role("main").get_by_role("link", name="Sign up").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Create an account")
    # By label: every field must have one.
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Your name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)


def test_signup_confirm_reminders_dashboard_and_shutdown(browser, app, open_browser):
    shots = Screenshots(app.artifacts, docs=README_SHOTS, docs_phone=README_PHONE_SHOTS)
    url = app.url

    # Ben signs up and never confirms. Nothing is sent yet: no worker runs.
    ben, ben_problems = open_browser("Ben")
    ben.goto("/")
    fill_signup_form(ben, email="ben@example.com", name="Ben")
    ben.get_by_role("button", name="Sign up").click()
    expect(ben).to_have_url(f"{url}/watch/")
    expect(email_row(ben, "Confirmation link").locator(".badge")).to_have_text("Queued")

    # Ada: home, signup, the watch page with her confirmation queued.
    ada, ada_problems = open_browser("Ada")
    ada.goto("/")
    expect(ada.get_by_role("heading", level=1)).to_have_text(
        "Sign up, then watch your emails go out"
    )
    expect(ada.locator(".worker-status")).to_contain_text("No worker is running")
    shots.take(ada, "home")
    fill_signup_form(ada, email="ada@example.com", name="Ada")
    shots.take(ada, "signup")
    ada.get_by_role("button", name="Sign up").click()
    expect(ada).to_have_url(f"{url}/watch/")
    expect(ada.get_by_role("status")).to_contain_text("Welcome, Ada!")
    confirmation = email_row(ada, "Confirmation link")
    reminder = email_row(ada, "Reminder to confirm")
    expect(confirmation.locator(".badge")).to_have_text("Queued")
    expect(reminder.locator(".badge")).to_have_text("Queued")
    no_worker = ada.locator(".notice-no-worker")
    expect(no_worker).to_contain_text("No worker is running")
    expect(no_worker.locator("code").first).to_have_text("heroku ps:scale worker=1")
    shots.take(ada, "watch-queued")
    ada.evaluate("window.e2eSamePage = true")  # gone if the page reloads

    # The worker dyno starts; the page shows the email sent, by itself, and
    # the notice goes.
    worker = app.start("worker")
    expect(no_worker).to_have_count(0, timeout=SEND_TIMEOUT)
    expect(confirmation.locator(".badge")).to_have_text("Sent", timeout=SEND_TIMEOUT)
    inbox_link = ada.get_by_role("link", name=CONFIRMATION_SUBJECT, exact=True)
    expect(inbox_link).to_be_visible()
    assert ada.evaluate("window.e2eSamePage === true"), "the watch page reloaded"
    shots.take(ada, "watch")
    ada_problems.assert_none()

    # The delivered email, read in the outbox; its button opens the link in a new tab.
    inbox_link.click()
    expect(ada.get_by_role("heading", level=1)).to_have_text(CONFIRMATION_SUBJECT)
    expect(ada.get_by_text("ada@example.com").first).to_be_visible()
    shots.take(ada, "email")
    html_mail = ada.frame_locator("iframe[title='HTML version of the email']")
    with ada.context.expect_page() as opened:
        html_mail.get_by_role("link", name="Confirm my address").click()
    link_page = opened.value
    link_page.wait_for_load_state()
    assert link_page.url.startswith(f"{url}/confirm/"), link_page.url
    ada.close()
    ada = link_page
    expect(ada.get_by_role("heading", level=1)).to_have_text("Confirm your address")
    shots.take(ada, "confirm")
    ada.get_by_role("button", name="Confirm my address").click()
    expect(ada).to_have_url(f"{url}/watch/")
    expect(ada.get_by_role("status")).to_contain_text(
        "Your address is confirmed and you are logged in."
    )
    expect(ada.locator(".badge-confirmed")).to_have_text("Confirmed")
    expect(ada.get_by_role("button", name="Log out")).to_be_visible()
    ada_problems.assert_none()

    # REMINDER_DELAY later: Ada's reminder is skipped, Ben's arrives.
    reminder = email_row(ada, "Reminder to confirm")
    expect(
        reminder.locator(".badge"),
        f"Ada confirmed, so her reminder must be skipped (if it was sent, she confirmed "
        f"after its time: raise REMINDER_DELAY, now {REMINDER_DELAY} s)",
    ).to_have_text("Skipped", timeout=REMINDER_TIMEOUT)
    expect(reminder).to_contain_text("already confirmed")
    expect(ada.get_by_role("link", name=REMINDER_SUBJECT)).to_have_count(0)
    shots.take(ada, "watch-confirmed")
    expect(email_row(ben, "Reminder to confirm").locator(".badge")).to_have_text(
        "Sent", timeout=REMINDER_TIMEOUT
    )
    expect(ben.get_by_role("link", name=REMINDER_SUBJECT)).to_be_visible()
    ada_problems.assert_none()
    ben_problems.assert_none()

    # Staff: a failed job on the dashboard, retried, succeeds.
    # A shell has no request to take the site's address from: SITE_URL gives it.
    created = app.run_once(
        "failed-job", f"python manage.py shell -c {shlex.quote(FAILED_JOB_SCRIPT)}", SITE_URL=url
    )
    failed_job = int(re.search(r"failed_job=(\d+)", created).group(1))
    staff, staff_problems = open_browser("staff")
    staff.goto("/")
    staff.get_by_role("navigation", name="Main").get_by_role("link", name="Log in").click()
    staff.get_by_label("Email", exact=True).fill(STAFF_EMAIL)
    staff.get_by_label("Password", exact=True).fill(STAFF_PASSWORD)
    staff.get_by_role("main").get_by_role("button", name="Log in").click()
    dashboard_link = staff.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Jobs dashboard"
    )
    expect(dashboard_link).to_be_visible()
    with staff.expect_response(f"{url}/jobs/") as dashboard:
        dashboard_link.click()
    assert dashboard.value.status == 200, (
        f"GET /jobs/ answered {dashboard.value.status}: the jobs dashboard must be mounted "
        "at /jobs/ (signupdemo/urls.py: path('jobs/', include('jobs.urls')))"
    )
    main = staff.get_by_role("main")
    expect(staff.get_by_role("heading", level=1)).to_contain_text("Jobs")
    expect(main).to_contain_text("emails")  # the queue the signups used
    shots.take(staff, "dashboard")
    main.get_by_role("link", name=re.compile(r"\bfailed\b", re.IGNORECASE)).first.click()
    expect(staff).to_have_url(re.compile(r"/jobs/failed/"))
    failed_link = main.get_by_role("link", name=f"#{failed_job}", exact=True)
    expect(main).to_contain_text("SMTPServerDisconnected")
    shots.take(staff, "dashboard-failed")
    failed_link.click()
    expect(staff).to_have_url(f"{url}/jobs/{failed_job}/")
    main.get_by_role("button", name="Retry", exact=True).click()
    expect(staff).to_have_url(f"{url}/jobs/{failed_job}/")
    expect(main).to_contain_text("Succeeded", timeout=SEND_TIMEOUT)  # live, no reload
    shots.take(staff, "dashboard-job")
    staff_problems.assert_none()
    # The retried job really sent Ben his email.
    ben.reload()
    expect(ben.get_by_role("link", name=CONFIRMATION_SUBJECT, exact=True)).to_have_count(2)
    ben_problems.assert_none()

    # Shutdown, as on a restart or deploy: SIGTERM, and a clean exit in time.
    web = next(p for p in app.processes if p.name == "web")
    assert worker.stop(SHUTDOWN_TIMEOUT) == 0, worker.describe()
    assert web.stop(SHUTDOWN_TIMEOUT) == 0, web.describe()
    for process in (worker, web):
        assert "Traceback" not in process.output, process.describe()
