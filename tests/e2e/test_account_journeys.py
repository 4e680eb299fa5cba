"""The account dead ends, walked in a real browser against the real processes.

A lost session before confirming, signing up while logged in as someone
else, a forgotten password, and a typed /logout/: each must lead somewhere.
"""

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase"
CONFIRMATION_SUBJECT = "Confirm your email address"
RESET_SUBJECT = "Reset your password"
# The worker polls every 5 s on SQLite; an idle watch page polls every 15 s.
SEND_TIMEOUT = 40_000


def sign_up(page: Page, *, email: str, name: str) -> None:
    page.goto("/signup/")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Your name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/watch/$"))


def log_in(page: Page, *, email: str, password: str) -> None:
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("main").get_by_role("button", name="Log in").click()


def open_link_in_message(page: Page, subject: str, path: str) -> None:
    """Open the newest message with ``subject`` (the inbox lists oldest first), then its link."""
    page.get_by_role("link", name=subject, exact=True).last.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(subject)
    # Times read one way on every page: local, with the zone, and how long ago.
    sent = page.get_by_role("main").locator("time").first
    expect(sent).to_have_text(
        re.compile(r"\d\d:\d\d:\d\d.* [A-Z][A-Za-z+\-:0-9]* \((now|.* ago)\)$")
    )
    href = page.get_by_role("main").locator(f"a[href*='{path}']").first.get_attribute("href")
    page.goto(href)


def test_lost_session_signup_while_logged_in_forgotten_password(app, open_browser):
    app.start("worker")
    nav = "navigation"

    # Cleo signs up; this first browser keeps watching her emails.
    first, first_problems = open_browser("Cleo's first browser")
    sign_up(first, email="cleo@example.com", name="Cleo")
    expect(first.get_by_role("link", name=CONFIRMATION_SUBJECT, exact=True)).to_be_visible(
        timeout=SEND_TIMEOUT
    )

    # In another browser (cookies lost), her right password opens her own
    # watch page, with a resend button, but logs nothing in.
    second, second_problems = open_browser("Cleo's second browser")
    second.goto("/login/")
    log_in(second, email="cleo@example.com", password=PASSWORD)
    expect(second).to_have_url(f"{app.url}/watch/")
    expect(second.get_by_role("status")).to_contain_text("Your address is not confirmed yet")
    expect(second.get_by_role(nav, name="Main").get_by_role("link", name="Log in")).to_be_visible()
    second.get_by_role("button", name="Send a fresh link").click()
    expect(second.get_by_role("status")).to_contain_text("A fresh confirmation link is on its way.")
    expect(second.get_by_role("link", name=CONFIRMATION_SUBJECT, exact=True)).to_have_count(
        2, timeout=SEND_TIMEOUT
    )
    open_link_in_message(second, CONFIRMATION_SUBJECT, "/confirm/")
    second.get_by_role("button", name="Confirm my address").click()
    expect(second.get_by_role("status")).to_contain_text("you are logged in")

    # Logged in as Cleo, this browser signs Dan up: Cleo is logged out, and
    # the page watches Dan, whose confirmation is readable here.
    second.goto("/signup/")
    expect(second.get_by_role("main")).to_contain_text(
        "Signing up for another account logs you out of this one"
    )
    sign_up(second, email="dan@example.com", name="Dan")
    main = second.get_by_role("main")
    expect(main).to_contain_text("dan@example.com")
    expect(main).not_to_contain_text("cleo@example.com")
    expect(second.get_by_role(nav, name="Main").get_by_role("link", name="Log in")).to_be_visible()
    expect(second.get_by_role("link", name=CONFIRMATION_SUBJECT, exact=True)).to_be_visible(
        timeout=SEND_TIMEOUT
    )
    second_problems.assert_none()

    # Cleo forgets her password and asks from the login page, anywhere; the
    # email reaches her outbox, which her first browser still watches.
    anyone, anyone_problems = open_browser("a third browser")
    anyone.goto("/login/")
    anyone.get_by_role("link", name="Reset it").click()
    anyone.get_by_label("Email", exact=True).fill("cleo@example.com")
    anyone.get_by_role("button", name="Email me a link").click()
    expect(anyone.get_by_role("heading", level=1)).to_have_text("Check your email")
    anyone_problems.assert_none()

    first.goto("/watch/")
    expect(first.get_by_role("link", name=RESET_SUBJECT, exact=True)).to_be_visible(
        timeout=SEND_TIMEOUT
    )
    open_link_in_message(first, RESET_SUBJECT, "/password-reset/")
    expect(first.get_by_role("heading", level=1)).to_have_text("Choose a new password")
    first.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    first.get_by_label("New password confirmation", exact=True).fill(NEW_PASSWORD)
    first.get_by_role("button", name="Save my new password").click()
    expect(first.get_by_role("heading", level=1)).to_have_text("Your password is changed")
    first.get_by_role("main").get_by_role("link", name="Log in").click()
    log_in(first, email="cleo@example.com", password=NEW_PASSWORD)
    expect(
        first.get_by_role(nav, name="Main").get_by_role("button", name="Log out")
    ).to_be_visible()

    # A typed /logout/ asks with a button instead of a blank 405.
    first.goto("/logout/")
    expect(first.get_by_role("heading", level=1)).to_have_text("Log out")
    first.get_by_role("main").get_by_role("button", name="Log out").click()
    expect(first.get_by_role(nav, name="Main").get_by_role("link", name="Log in")).to_be_visible()
    first_problems.assert_none()


def test_the_watch_page_says_live_why_emails_wait(app, open_browser):
    worker = app.start("worker")
    fay, fay_problems = open_browser("Fay")
    sign_up(fay, email="fay@example.com", name="Fay")
    confirmations = fay.get_by_role("link", name=CONFIRMATION_SUBJECT, exact=True)
    expect(confirmations).to_be_visible(timeout=SEND_TIMEOUT)
    notices = fay.locator("[data-notices] .notice")
    expect(notices).to_have_count(0)

    # Staff pause the emails queue; Fay asks for a fresh link, which waits.
    app.run_once(
        "pause",
        "python manage.py shell -c "
        "'from jobs.models import PausedQueue; PausedQueue.objects.create(queue=\"emails\")'",
    )
    fay.get_by_role("button", name="Send a fresh link").click()
    expect(fay.get_by_role("status")).to_contain_text("A fresh confirmation link is on its way.")
    expect(notices).to_have_count(1)
    expect(notices).to_contain_text("Sending email is paused.")
    fay.evaluate("window.e2eSamePage = true")  # gone if the page reloads

    # Resumed: the notice goes and the email goes out, with no reload.
    app.run_once(
        "resume",
        "python manage.py shell -c "
        "'from jobs.models import PausedQueue; PausedQueue.objects.all().delete()'",
    )
    expect(notices).to_have_count(0, timeout=SEND_TIMEOUT)
    expect(confirmations).to_have_count(2, timeout=SEND_TIMEOUT)
    assert fay.evaluate("window.e2eSamePage === true"), "the watch page reloaded"
    assert worker.popen.poll() is None, worker.describe()
    fay_problems.assert_none()
