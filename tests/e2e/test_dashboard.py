"""The jobs dashboard in a real browser: bulk actions (cancel among them), filters,
a task's page, the confirmation page, view-only staff, and every page at phone width.

No worker runs: retried jobs stay due, so what the pages show is what the
test wrote, and nothing changes under the clicks.
"""

import re
import shlex

import pytest
from playwright.sync_api import Page, expect

from .conftest import STAFF_EMAIL, STAFF_PASSWORD
from .pages import PHONE, Screenshots

pytestmark = pytest.mark.slow

VIEWER_EMAIL = "viewer@example.com"
VIEWER_PASSWORD = "only looking, never touching"
CONFIRM = "signupdemo.mailers.SignupMailer.confirmation"
REPORT = "signupdemo.tasks.weekly_report"
# The README's dashboard pictures (E2E_UPDATE_SCREENSHOTS=1 refreshes them).
README_SHOTS = {"dashboard-failed-list", "dashboard-task"}
README_PHONE_SHOTS = {"dashboard-failed-list", "dashboard-confirm"}

# Jobs in every state, a worker, and staff who may only look.
SEED_SCRIPT = f"""
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone
from jobs.models import Job, Worker

now = timezone.now()
def error(n, kind, message):
    return {{"exception_class": kind, "message": message, "attempt": n, "worker": "worker.1:7:abc",
            "traceback": "Traceback (most recent call last):\\n" + kind + ": " + message,
            "started_at": (now - timedelta(minutes=5 - n, seconds=3)).isoformat(),
            "at": (now - timedelta(minutes=5 - n)).isoformat()}}
def job(name, queue, status, **fields):
    payload = {{"v": 1, "function": name, "args": [fields.pop("arg", 1)], "kwargs": {{}}}}
    return Job.objects.create(name=name, queue=queue, status=status, payload=payload, **fields)

for n in range(4):
    job(CONFIRM, "emails", "failed", arg=n, attempts=25, error_count=25, failed_at=now,
        finished_at=now, locked_at=now - timedelta(seconds=2), locked_by="worker.1:7:abc",
        last_error="smtplib.SMTPServerDisconnected: Connection unexpectedly closed",
        errors=[error(k, "smtplib.SMTPServerDisconnected", "Connection unexpectedly closed")
                for k in (1, 2)])
job(REPORT, "reports", "failed", attempts=3, max_attempts=3, failed_at=now - timedelta(minutes=1),
    finished_at=now - timedelta(minutes=1), locked_at=now - timedelta(minutes=1, seconds=9),
    last_error="KeyError: 'week'",
    errors=[error(3, "KeyError", "'week'")])
for n in range(6):
    job(CONFIRM, "emails", "succeeded", arg=n, attempts=1, finished_at=now - timedelta(minutes=n),
        locked_at=now - timedelta(minutes=n, seconds=n + 1), locked_by="worker.1:7:abc")
job(REPORT, "reports", "scheduled", run_at=now + timedelta(days=1))
for n in range(3):
    job(REPORT, "exports", "scheduled", arg=n, run_at=now + timedelta(hours=2 + n))
job(CONFIRM, "emails", "blocked", arg=9, concurrency_key="smtp", concurrency_limit=1,
    run_at=now - timedelta(seconds=30))
job(CONFIRM, "emails", "ready")
Worker.objects.create(name="worker.1:7:abc", hostname="worker.1", pid=7, queues=["emails"],
                      concurrency=4)
job(CONFIRM, "emails", "running", attempts=1, locked_at=now - timedelta(seconds=4),
    locked_by="worker.1:7:abc")
viewer = get_user_model().objects.create_user(
    "{VIEWER_EMAIL}", "{VIEWER_EMAIL}", "{VIEWER_PASSWORD}", is_staff=True)
viewer.user_permissions.add(Permission.objects.get(codename="view_job"))
print("seeded")
""".replace("CONFIRM", repr(CONFIRM)).replace("REPORT", repr(REPORT))


def log_in(page: Page, email: str, password: str) -> None:
    page.goto("/login/?next=/jobs/")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("main").get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/jobs/$"))


def rows(page: Page):
    return page.locator("#live tbody tr")


def test_bulk_actions_filters_a_task_view_only_staff_and_phone_width(app, open_browser):
    assert "seeded" in app.run_once("seed", f"python manage.py shell -c {shlex.quote(SEED_SCRIPT)}")
    shots = Screenshots(app.artifacts, docs=README_SHOTS, docs_phone=README_PHONE_SHOTS)
    staff, problems = open_browser("staff")
    log_in(staff, STAFF_EMAIL, STAFF_PASSWORD)
    header = staff.get_by_role("banner")
    expect(header.get_by_role("link", name="Back to the site")).to_be_visible()
    expect(header.get_by_role("button", name="Log out")).to_be_visible()
    # Times as on the site: local, with the zone and how long ago.
    expect(staff.locator("#live .jd-chart-x time").first).to_have_text(re.compile(r"\d\d:\d\d"))
    shots.take(staff, "dashboard-overview")

    # Filters: the queue is chosen from those in the table.
    staff.get_by_role("navigation", name="Jobs dashboard").get_by_role(
        "link", name="Failed"
    ).click()
    expect(rows(staff)).to_have_count(5)
    staff.get_by_label("Queue").select_option("reports")
    staff.get_by_role("button", name="Filter").click()
    expect(rows(staff)).to_have_count(1)
    expect(rows(staff).first).to_contain_text("KeyError: 'week'")
    staff.get_by_role("link", name="Clear filters").click()
    expect(rows(staff)).to_have_count(5)
    expect(rows(staff).first.locator("time")).to_have_text(
        re.compile(r"\d\d:\d\d:\d\d.* [A-Z][A-Za-z+\-:0-9]* \((now|.* ago)\)$")
    )
    shots.take(staff, "dashboard-failed-list")

    # Bulk: tick two rows, retry them.
    staff.get_by_label(re.compile(r"^Tick job #")).nth(0).check()
    staff.get_by_label(re.compile(r"^Tick job #")).nth(1).check()
    staff.locator("#bulk").get_by_role("button", name="Retry").click()
    expect(staff.get_by_role("status")).to_contain_text(
        "2 failed jobs: will run again now, with fresh attempts."
    )
    expect(rows(staff)).to_have_count(3)

    # Every match of a filter, on every page: discard asks first; saying no does nothing.
    staff.get_by_label("Task name").fill(CONFIRM)
    staff.get_by_role("button", name="Filter").click()
    expect(rows(staff)).to_have_count(2)
    every = staff.locator("#bulk input[name=scope][value=all]")
    expect(every).to_have_accessible_name(re.compile(r"every failed job matching these filters"))
    every.check()
    staff.once("dialog", lambda dialog: dialog.dismiss())
    staff.locator("#bulk").get_by_role("button", name="Discard").click()
    expect(rows(staff)).to_have_count(2)
    staff.once("dialog", lambda dialog: dialog.accept())
    staff.locator("#bulk").get_by_role("button", name="Discard").click()
    expect(staff.get_by_role("status")).to_contain_text("2 failed jobs: discarded.")
    expect(staff.get_by_role("main")).to_contain_text("No failed jobs match these filters.")

    # A row's discard asks too.
    staff.get_by_role("link", name="Clear filters").click()
    expect(rows(staff)).to_have_count(1)
    staff.once("dialog", lambda dialog: dialog.dismiss())
    rows(staff).first.get_by_role("button", name=re.compile("^Discard")).click()
    expect(rows(staff)).to_have_count(1)

    # A task's page, from a row.
    staff.get_by_role("navigation", name="Jobs dashboard").get_by_role(
        "link", name="Succeeded"
    ).click()
    rows(staff).first.get_by_role("link", name=CONFIRM).click()
    expect(staff.get_by_role("heading", level=1)).to_have_text(CONFIRM)
    main = staff.get_by_role("main")
    expect(main).to_contain_text("success rate")
    expect(main.locator(".jd-tile", has_text="succeeded").first).to_contain_text("6")
    shots.take(staff, "dashboard-task")

    # The job page: attempts, actions explained, the retry logged.
    staff.goto("/jobs/ready/")
    rows(staff).last.get_by_role("link", name=re.compile(r"^#\d+$")).click()
    expect(main).to_contain_text("Retried from the jobs dashboard")
    expect(main).to_contain_text("Attempts (0 of 25)")
    shots.take(staff, "dashboard-job")

    # Bulk cancel: two ticked scheduled jobs, asked first; they move to the cancelled list.
    staff.goto("/jobs/scheduled/?queue=exports")
    expect(rows(staff)).to_have_count(3)
    staff.get_by_label(re.compile(r"^Tick job #")).nth(0).check()
    staff.get_by_label(re.compile(r"^Tick job #")).nth(1).check()
    staff.once("dialog", lambda dialog: dialog.dismiss())
    staff.locator("#bulk").get_by_role("button", name="Cancel", exact=True).click()
    expect(rows(staff)).to_have_count(3)
    staff.once("dialog", lambda dialog: dialog.accept())
    staff.locator("#bulk").get_by_role("button", name="Cancel", exact=True).click()
    expect(staff.get_by_role("status")).to_contain_text(
        "2 scheduled jobs: cancelled; they will not run."
    )
    expect(rows(staff)).to_have_count(1)
    staff.goto("/jobs/cancelled/?sort=oldest")
    expect(rows(staff)).to_have_count(2)
    expect(staff.get_by_label("Order")).to_have_value("oldest")
    shots.take(staff, "dashboard-cancelled")

    # Without the script's dialog (as without JavaScript) a discard asks on a page of
    # its own, which fits a phone too; going back deletes nothing.
    staff.get_by_role("button", name="Pause updates").click()  # keep the edited forms
    staff.evaluate(
        "document.querySelectorAll('[data-confirm]')"
        ".forEach((el) => el.removeAttribute('data-confirm'))"
    )
    rows(staff).first.get_by_role("button", name=re.compile("^Discard")).click()
    expect(staff.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Discard job #\d+\?$"))
    shots.take(staff, "dashboard-confirm")
    staff.get_by_role("link", name="No, go back").click()
    expect(rows(staff)).to_have_count(2)

    # Every other page fits a phone (Screenshots.take checks 375 px).
    for path, name in [
        ("/jobs/blocked/", "dashboard-blocked"),
        ("/jobs/scheduled/", "dashboard-scheduled"),
        ("/jobs/running/", "dashboard-running"),
        ("/jobs/succeeded/", "dashboard-succeeded"),
        ("/jobs/task/", "dashboard-tasks"),
        ("/jobs/workers/", "dashboard-workers"),
    ]:
        staff.goto(path)
        shots.take(staff, name)
    expect(main).to_contain_text("1 of 4")
    problems.assert_none()

    # View-only staff: the pages, no buttons, and a POST refused.
    viewer, viewer_problems = open_browser("viewer")
    log_in(viewer, VIEWER_EMAIL, VIEWER_PASSWORD)
    viewer.goto("/jobs/failed/")
    expect(rows(viewer)).to_have_count(1)
    viewer_main = viewer.get_by_role("main")
    actions = re.compile("Retry|Run now|Discard|Reschedule|Cancel|Ask to stop")
    expect(viewer_main.get_by_role("button", name=actions)).to_have_count(0)
    expect(viewer_main.get_by_role("checkbox")).to_have_count(0)
    rows(viewer).first.get_by_role("link", name=re.compile(r"^#\d+$")).click()
    expect(viewer_main).to_contain_text("You may look at jobs, not act on them.")
    job_path = viewer.url.removeprefix(app.url)
    status = viewer.evaluate(
        """async (url) => {
          const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
          const body = new URLSearchParams({csrfmiddlewaretoken: token});
          return (await fetch(url, {method: "POST", body})).status;
        }""",
        f"{job_path}retry/",
    )
    assert status == 403
    viewer.reload()
    expect(viewer.locator(".jd-job-head .jd-badge")).to_have_text("Failed")
    assert [p for p in viewer_problems.found if "403" not in p] == []
    viewer_problems.found.clear()

    viewer.set_viewport_size(PHONE)
    for path in (
        "/jobs/",
        "/jobs/failed/",
        "/jobs/blocked/",
        "/jobs/cancelled/",
        "/jobs/task/?name=" + CONFIRM,
        "/jobs/workers/",
    ):
        viewer.goto(path)
        width = viewer.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} scrolls sideways at 375 px: {width}"
    viewer_problems.assert_none()
