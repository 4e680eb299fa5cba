"""Bad input at the web boundary: every answer is a form error, a 403, a 410 or a 429, never a 500.

Complements tests/signupdemo (which proves the ordinary form errors, the
basic limits and the basic token cases): here are the hostile and odd inputs.
"""

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from jobs.models import Job
from jobs.testing import work_off
from signupdemo import limits
from signupdemo.models import OutboxMessage, ScheduledEmail, Signup
from signupdemo.tokens import CONFIRM_MAX_AGE, WATCH_SALT, make_confirmation_token

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

User = get_user_model()
PASSWORD = "correct horse battery staple"


def signup(client, email="ada@example.com", name="Ada", password=PASSWORD, **extra):
    return client.post(
        reverse("signup"), {"email": email, "name": name, "password": password}, **extra
    )


def assert_form_error(response, field):
    assert response.status_code == 200, response.status_code
    assert response.context["form"].errors[field], response.context["form"].errors
    return response.context["form"].errors[field]


def without_tokens(body: str, email: str = "") -> str:
    """A page with its per-request parts (CSRF tokens, the address typed) blanked, to compare."""
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", body)
    if email:
        body = body.replace(email, "EMAIL").replace(quote(email), "EMAIL")
    return body


def confirmed_user(email="bob@example.com"):
    return User.objects.create_user(email, email, PASSWORD)


# -- the signup form ----------------------------------------------------------------


@pytest.mark.parametrize(
    "data, missing",
    [
        ({}, {"email", "name", "password"}),
        ({"name": "Ada", "password": PASSWORD}, {"email"}),
        ({"email": "ada@example.com", "password": PASSWORD}, {"name"}),
        ({"email": "ada@example.com", "name": "Ada"}, {"password"}),
    ],
)
def test_missing_fields_are_form_errors(client, data, missing):
    response = client.post(reverse("signup"), data)
    assert response.status_code == 200
    assert set(response.context["form"].errors) == missing
    assert not User.objects.exists()


@pytest.mark.parametrize("field", ["name", "email"])
def test_a_10000_character_value_is_a_form_error(client, field):
    values = {"name": "Ada", "email": "ada@example.com", field: "a" * 10_000}
    if field == "email":
        values["email"] = "a" * 10_000 + "@example.com"
    errors = assert_form_error(signup(client, **values), field)
    assert "at most" in " ".join(errors)
    assert not User.objects.exists()
    assert not Job.objects.exists()


def test_a_10000_character_password_is_accepted(client):
    # Passphrases have no upper limit; the hasher digests any length.
    assert signup(client, password="correct horse " * 715).status_code == 302
    assert User.objects.get().check_password("correct horse " * 715)


@pytest.mark.parametrize(
    "email",
    [
        "ada@example.com\nBcc: victim@example.org",  # header injection
        "ada@example.com\r\nBcc: victim@example.org",
        "ada@example.com\x00",
        "<script>alert(1)</script>@example.com",
        "ada@@example.com",
        "ada @example.com",
        "ada@exam_ple.com",
        "ada@example..com",
        ".ada@example.com",
    ],
)
def test_hostile_addresses_are_form_errors(client, email):
    assert_form_error(signup(client, email=email), "email")
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "email, stored",
    [
        ("joerg@bücher.example", "joerg@bücher.example"),
        ("JOERG@BÜCHER.example", "joerg@bücher.example"),
        ("joerg@xn--bcher-kva.example", "joerg@bücher.example"),
        ("li@例子.广告", "li@例子.广告"),
    ],
)
def test_internationalised_domains_are_accepted_stored_once_and_mailed(
    client, email, stored, settings
):
    settings.MAILERS = {"default": {"BACKEND": "signupdemo.outbox.OutboxEmailBackend"}}
    assert signup(client, email=email).status_code == 302
    user = User.objects.get()
    assert user.email == user.username == stored
    assert work_off().succeeded == 1
    assert OutboxMessage.objects.get().to == stored


@pytest.mark.parametrize(
    "email", ["jörg@bücher.example", "用户@例子.广告", "\uff41\uff44\uff41@example.com"]
)
def test_non_ascii_local_parts_are_a_clear_form_error(client, email):
    # Delivering to them needs SMTPUTF8, which Django's SMTP mailer does not speak:
    # refusing at the form beats accepting an address we can never mail.
    errors = assert_form_error(signup(client, email=email), "email")
    assert errors == ["Enter a valid email address."]
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "first, again",
    [
        # "example" in full-width letters: the same mailbox
        ("ada@example.com", "ada@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com"),
        ("ada@bücher.example", "ADA@xn--bcher-kva.example"),
        ("ada@bücher.example", "ada@bu\u0308cher.example"),  # decomposed ü
    ],
)
def test_spellings_of_one_mailbox_are_one_account(client, first, again):
    assert signup(client, email=first).status_code == 302
    response = signup(Client(), email=again)
    assert response.context["form"].has_error("email", "duplicate")
    assert User.objects.count() == 1
    assert ScheduledEmail.objects.filter(kind="confirmation").count() == 1


def test_an_address_that_normalises_past_the_column_limit_is_a_form_error(client):
    # "㎏" is "kg" once normalised: 130 characters typed, 190 stored.
    email = "a" * 64 + "@" + "\u338f" * 30 + "." + "\u338f" * 30 + ".com"
    errors = assert_form_error(signup(client, email=email), "email")
    assert "at most 150" in " ".join(errors)


def test_weak_password_costs_no_account_and_no_email(client):
    assert_form_error(signup(client, name="Ada Lovelace", password="adalovelace"), "password")
    assert not User.objects.exists()
    assert not Job.objects.exists()


# -- account enumeration -----------------------------------------------------------------


def test_duplicate_answer_is_the_same_for_a_confirmed_and_an_unconfirmed_account(client):
    signup(client, email="pending@example.com")
    confirmed_user("done@example.com")
    Signup.objects.create(user=User.objects.get(username="done@example.com"), confirmed_at=None)
    Signup.objects.filter(user__username="done@example.com").update(
        confirmed_at="2030-01-01T00:00Z"
    )

    pages = []
    for email in ("pending@example.com", "done@example.com"):
        response = signup(Client(), email=email, name="Mallory")
        assert response.status_code == 200
        assert response.context["form"].has_error("email", "duplicate")
        pages.append(without_tokens(response.content.decode(), email))
    assert pages[0] == pages[1]


def test_probing_the_signup_form_for_accounts_stops_at_the_attempt_limit(client):
    signup(client)
    prober = Client(REMOTE_ADDR="198.51.100.9")
    statuses = [signup(prober, name="Mallory").status_code for _ in range(40)]
    allowed = limits.SIGNUP_ATTEMPTS_PER_CLIENT.max_count
    assert statuses == [200] * allowed + [429] * (40 - allowed)


@pytest.mark.parametrize("who", ["unknown", "unconfirmed", "confirmed"])
def test_resend_page_is_identical_whoever_the_address_belongs_to(client, who):
    signup(client, email="unconfirmed@example.com")
    confirmed_user("confirmed@example.com")
    email = f"{who}@example.com"

    response = Client().post(reverse("resend"), {"email": email})
    assert response.status_code == 200
    reference = Client().post(reverse("resend"), {"email": "nobody-at-all@example.com"})
    assert without_tokens(response.content.decode(), email) == without_tokens(
        reference.content.decode(), "nobody-at-all@example.com"
    )


@pytest.mark.parametrize("who", ["unknown", "unconfirmed"])
def test_resend_limit_answers_the_same_whoever_the_address_belongs_to(client, who):
    signup(client, email="unconfirmed@example.com")
    statuses = [
        Client(REMOTE_ADDR=f"198.51.100.{i}")
        .post(reverse("resend"), {"email": f"{who}@example.com"})
        .status_code
        for i in range(6)
    ]
    # The limit counts asks for any address, known or not, plus the signup's own
    # email: it shows that an email went out this hour, which is no more than the
    # signup form's duplicate error must say (and that form is throttled per client).
    allowed = limits.EMAILS_PER_ADDRESS.max_count - (who == "unconfirmed")
    assert statuses == [200] * allowed + [429] * (6 - allowed)


@pytest.mark.parametrize("who", ["unknown", "wrong password", "unconfirmed, wrong password"])
def test_login_failure_reads_the_same_whatever_the_reason(client, who):
    """An unconfirmed account with the right password reaches its own watch
    page (tests/signupdemo/test_wording.py): that tells only its owner that
    it exists. Every wrong guess reads the same."""
    signup(client, email="unconfirmed@example.com")
    confirmed_user("known@example.com")
    username, password = {
        "unknown": ("nobody@example.com", PASSWORD),
        "wrong password": ("known@example.com", "not the password"),
        "unconfirmed, wrong password": ("unconfirmed@example.com", "not the password"),
    }[who]
    response = Client().post(reverse("login"), {"username": username, "password": password})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "That email and password do not match an active account. "
        "If you have just signed up, confirm your address first."
    ]


# -- CSRF --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, data",
    [
        ("/signup/", {"email": "ada@example.com", "name": "Ada", "password": PASSWORD}),
        ("/confirm/again/", {"email": "ada@example.com"}),
        ("/login/", {"username": "bob@example.com", "password": PASSWORD}),
        ("/logout/", {}),
    ],
)
@pytest.mark.parametrize("token", ["missing", "forged"])
def test_a_post_without_a_valid_csrf_token_is_the_403_page(url, data, token):
    confirmed_user()
    browser = Client(enforce_csrf_checks=True)
    browser.get(url if url != "/logout/" else "/")  # the CSRF cookie, as a visitor has it
    if token == "forged":
        data = {**data, "csrfmiddlewaretoken": "x" * 64}
    response = browser.post(url, data)
    assert response.status_code == 403
    assert "That form had expired" in response.content.decode()
    assert not Signup.objects.exists()
    assert not Job.objects.exists()
    assert "_auth_user_id" not in browser.session


def test_a_confirmation_posted_without_a_csrf_token_confirms_nothing():
    browser = Client(enforce_csrf_checks=True)
    signup(Client())
    user = User.objects.get()
    response = browser.post(reverse("confirm", args=[make_confirmation_token(user)]))
    assert response.status_code == 403
    user.refresh_from_db()
    assert not user.is_active


# -- the rate limit under a flood -----------------------------------------------------------


def test_200_signups_from_one_client_make_at_most_the_limit_of_accounts(client):
    responses = [signup(client, email=f"flood{i}@example.com") for i in range(200)]
    statuses = [r.status_code for r in responses]
    allowed = limits.SIGNUPS_PER_CLIENT.max_count
    assert statuses == [302] * allowed + [429] * (200 - allowed)
    assert User.objects.count() == allowed
    assert ScheduledEmail.objects.filter(kind="confirmation").count() == allowed
    assert Job.objects.filter(queue="emails").count() == 2 * allowed  # confirmation + reminder
    refused = responses[-1]
    assert "Too many requests" in refused.content.decode()
    assert 0 < int(refused["Retry-After"]) <= 3600


# -- confirmation tokens ----------------------------------------------------------------------


@pytest.fixture
def two_accounts(client):
    """Ada and Bob signed up; ``client`` is Ada's browser (it may watch Ada's emails)."""
    signup(Client(), email="bob@example.com", name="Bob")
    signup(client, email="ada@example.com")
    return (
        User.objects.get(username="ada@example.com"),
        User.objects.get(username="bob@example.com"),
    )


def test_a_link_for_another_account_confirms_that_account_only(client, two_accounts):
    ada, bob = two_accounts
    url = reverse("confirm", args=[make_confirmation_token(bob)])
    page = client.get(url)
    assert page.status_code == 200
    assert "bob@example.com" in page.content.decode()  # it says whose address it confirms

    assert client.post(url).status_code == 302
    ada.refresh_from_db()
    bob.refresh_from_db()
    assert bob.is_active and bob.signup.is_confirmed
    assert not ada.is_active and not ada.signup.is_confirmed
    assert int(client.session["_auth_user_id"]) == bob.pk


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda user: signing.dumps(user.pk, salt=WATCH_SALT), id="watch-token"),
        pytest.param(
            lambda user: signing.dumps({"u": user.pk, "e": user.email}, salt="other"),
            id="other-salt",
        ),
        pytest.param(
            lambda user: signing.dumps({"u": user.pk + 1, "e": user.email}), id="unsalted"
        ),
        pytest.param(lambda user: "a" * 10_000, id="10000-chars"),
        pytest.param(lambda user: "ä:ö:ü", id="unicode"),
        pytest.param(lambda user: ":::", id="colons"),
        pytest.param(lambda user: "%00", id="percent-nul"),
    ],
)
def test_a_token_made_for_something_else_is_refused(client, two_accounts, make_token):
    ada, _ = two_accounts
    url = reverse("confirm", args=[make_token(ada)])
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code == 400
        assert "not valid" in response.content.decode()
    ada.refresh_from_db()
    assert not ada.is_active


def test_a_link_for_an_account_that_never_signed_up_is_refused(client):
    staff = User.objects.create_user("staff@example.com", "staff@example.com", PASSWORD)
    assert client.post(reverse("confirm", args=[make_confirmation_token(staff)])).status_code == 400


def test_a_link_for_a_deleted_account_is_refused(client, two_accounts):
    ada, _ = two_accounts
    url = reverse("confirm", args=[make_confirmation_token(ada)])
    ada.delete()
    assert client.post(url).status_code == 400


def test_a_reused_link_after_it_expired_still_changes_nothing(client, two_accounts):
    ada, _ = two_accounts
    url = reverse("confirm", args=[make_confirmation_token(ada)])
    assert client.post(url).status_code == 302
    User.objects.filter(pk=ada.pk).update(is_active=False)  # staff switched it off since
    with time_machine.travel(CONFIRM_MAX_AGE + timedelta(days=1)):
        assert Client().post(url).status_code == 410
    ada.refresh_from_db()
    assert not ada.is_active


# -- open redirects -------------------------------------------------------------------------

HOSTILE_NEXT = [
    "https://evil.example/",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https:evil.example",
    "http://testserver@evil.example/",
    "javascript:alert(1)",
    " //evil.example",
    "\t//evil.example",
]


def assert_stays_on_site(location: str):
    assert "evil.example" not in location and "javascript" not in location, location
    assert url_has_allowed_host_and_scheme(location, allowed_hosts={"testserver"}), location


@pytest.mark.parametrize("next_url", HOSTILE_NEXT)
def test_login_never_redirects_off_site(client, next_url):
    confirmed_user()
    response = client.post(
        f"{reverse('login')}?next={next_url}",
        {"username": "bob@example.com", "password": PASSWORD, "next": next_url},
    )
    assert response.status_code == 302
    assert_stays_on_site(response["Location"])
    assert response["Location"] == reverse("home")


@pytest.mark.parametrize("next_url", HOSTILE_NEXT)
def test_login_page_does_not_carry_a_hostile_next(client, next_url):
    page = client.get(reverse("login"), {"next": next_url})
    assert page.status_code == 200
    assert "evil.example" not in page.content.decode()
    # Logged in already: the page redirects at once, and not off site either.
    client.force_login(confirmed_user())
    response = client.get(reverse("login"), {"next": next_url})
    assert response.status_code == 302
    assert_stays_on_site(response["Location"])


def test_a_next_that_is_markup_is_escaped(client):
    page = client.get(reverse("login"), {"next": '/"><script>alert(1)</script>'})
    assert "<script>alert(1)" not in page.content.decode()


@pytest.mark.parametrize("next_url", HOSTILE_NEXT)
def test_logout_never_redirects_off_site(client, next_url):
    client.force_login(confirmed_user())
    response = client.post(reverse("logout"), {"next": next_url})
    assert response.status_code == 302
    assert_stays_on_site(response["Location"])


# -- staff pages: the admin's jobs pages and actions ---------------------------------------------

ADMIN_ACTIONS = ["retry_now", "run_at_once", "discard"]


@pytest.fixture
def failed_job():
    return Job.objects.create(
        name="tests.testapp.jobs.fail", payload={"function": "tests.testapp.jobs.fail"},
        status=Job.Status.FAILED, attempts=25, last_error="RuntimeError: boom",
    )  # fmt: skip


def admin_get_urls(job) -> list[str]:
    return [
        reverse("admin:index"),
        reverse("admin:jobs_job_changelist"),
        reverse("admin:jobs_job_change", args=[job.pk]),
        reverse("admin:jobs_job_history", args=[job.pk]),
        reverse("admin:jobs_worker_changelist"),
        reverse("admin:jobs_pausedqueue_changelist"),
        reverse("admin:jobs_pausedqueue_add"),
    ]


@pytest.fixture(params=["anonymous", "not staff"])
def outsider(request, client):
    if request.param == "not staff":
        user = confirmed_user("member@example.com")
        client.force_login(user)
    return client


def test_admin_pages_send_outsiders_to_the_admin_login(outsider, failed_job):
    for url in admin_get_urls(failed_job):
        response = outsider.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(f"{reverse('admin:login')}?next="), url


@pytest.mark.parametrize("action", ADMIN_ACTIONS)
def test_admin_actions_posted_by_outsiders_change_nothing(outsider, failed_job, action):
    before = Job.objects.values().get(pk=failed_job.pk)
    response = outsider.post(
        reverse("admin:jobs_job_changelist"),
        {"action": action, "_selected_action": [failed_job.pk], "index": 0},
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert Job.objects.values().get(pk=failed_job.pk) == before


def test_admin_pause_posted_by_outsiders_pauses_nothing(outsider):
    from jobs.models import PausedQueue

    response = outsider.post(reverse("admin:jobs_pausedqueue_add"), {"queue": "emails"})
    assert response.status_code == 302
    assert not PausedQueue.objects.exists()


def test_staff_without_job_permissions_are_refused_and_their_actions_ignored(client, failed_job):
    staff = User.objects.create_user("s@example.com", "s@example.com", PASSWORD, is_staff=True)
    client.force_login(staff)
    for url in admin_get_urls(failed_job)[1:]:
        assert client.get(url).status_code == 403, url
    before = Job.objects.values().get(pk=failed_job.pk)
    for action in ADMIN_ACTIONS:
        response = client.post(
            reverse("admin:jobs_job_changelist"),
            {"action": action, "_selected_action": [failed_job.pk], "index": 0},
        )
        assert response.status_code == 403, action
    assert Job.objects.values().get(pk=failed_job.pk) == before


# -- staff pages: the jobs dashboard (mounted at /jobs/ by signupdemo/urls.py) --------------


def dashboard_urls(job) -> list[str]:
    """Every URL of jobs.urls, read from its patterns so that new ones are covered too."""
    from jobs.urls import urlpatterns

    urls = []
    for pattern in urlpatterns:
        name = f"jobs:{pattern.name}"
        if "pk" in str(pattern.pattern):
            urls.append(reverse(name, kwargs={"pk": job.pk}))
        elif "status" in str(pattern.pattern):
            urls += [reverse(name, kwargs={"status": status}) for status in Job.Status.values]
        else:
            urls.append(reverse(name))
    return urls


def test_dashboard_is_mounted_where_the_site_links_to_it():
    assert reverse("jobs:overview") == "/jobs/"


@pytest.mark.parametrize("method", ["get", "post"])
def test_every_dashboard_url_sends_anonymous_visitors_to_log_in(client, failed_job, method):
    from jobs.models import PausedQueue

    for url in dashboard_urls(failed_job):
        response = getattr(client, method)(url, {"queue": "emails", "next": "/"})
        assert response.status_code == 302, f"{method.upper()} {url}"
        assert response["Location"].startswith(f"{reverse('login')}?next="), url
    assert Job.objects.get(pk=failed_job.pk).status == Job.Status.FAILED
    assert not PausedQueue.objects.exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_every_dashboard_url_refuses_members_who_are_not_staff(client, failed_job, method):
    from jobs.models import PausedQueue

    client.force_login(confirmed_user("member@example.com"))
    for url in dashboard_urls(failed_job):
        response = getattr(client, method)(url, {"queue": "emails", "next": "/"})
        assert response.status_code == 403, f"{method.upper()} {url}"
    assert Job.objects.get(pk=failed_job.pk).status == Job.Status.FAILED
    assert not PausedQueue.objects.exists()


def test_a_deactivated_staff_account_is_refused_too(client, failed_job):
    staff = User.objects.create_user(
        "old@example.com", "old@example.com", PASSWORD, is_staff=True, is_active=False
    )
    client.force_login(staff)
    # Django's backend does not load an inactive user: the session counts for nothing.
    for url in dashboard_urls(failed_job):
        assert client.get(url).status_code == 302, url
