"""Each list's orders: pages follow one another by keyset in either direction,
with ties and empty times neither repeated nor lost, and every order reads a
partial index."""

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs.dashboard import queries
from jobs.models import Job
from tests.jobs import test_dashboard_queries
from tests.jobs.bigtable import add_history_and_future
from tests.jobs.jobrows import make_job

pytestmark = pytest.mark.django_db

ORDERS = [(status, sort) for status, sorts in queries.LISTINGS.items() for sort in sorts]
#: Enough rows for three pages of PAGE_SIZE.
ROWS = 2 * queries.PAGE_SIZE + 11


def _rows(status: str) -> list[Job]:
    """ROWS jobs of ``status`` with many ties on every sort column, and for
    finished statuses a few without their time."""
    rng = random.Random(status)
    now = timezone.now().replace(microsecond=0)
    made = []
    for i in range(ROWS):
        at = now - timedelta(seconds=rng.randrange(8))  # ties on purpose
        fields = {
            "priority": rng.randrange(3),
            "run_at": at,
            "locked_at": at,
            "locked_by": f"host:{rng.randrange(3)}:abc",
            "concurrency_key": f"key{rng.randrange(3)}",
        }
        if status in ("succeeded", "cancelled"):
            fields["finished_at"] = None if i % 17 == 0 else at
        if status == "failed":
            fields["failed_at"] = None if i % 17 == 0 else at
        made.append(make_job(status, **fields))
    return made


def _expected(jobs: list[Job], listing: queries.Listing) -> list[int]:
    """The order the listing promises, worked out in Python: a stable sort per
    column from the last to the first; empty times sort as the greatest."""
    ordered = list(jobs)
    for name, descending in reversed(listing.columns):
        ordered.sort(
            key=lambda job, name=name: (
                (getattr(job, name) is None, getattr(job, name) or 0)
                if name.endswith("_at")
                else getattr(job, name)
            ),
            reverse=descending,
        )
    return [job.pk for job in ordered]


def _walk(client, status, sort):
    seen, url, params, pages = [], reverse("jobs:list", args=[status]), {"sort": sort}, 0
    while url:
        response = client.get(url, params)
        assert response.status_code == 200
        seen.extend(job.pk for job in response.context["page"].jobs)
        url, params, pages = response.context["next_url"], None, pages + 1
    return seen, pages


@pytest.mark.parametrize(
    ("status", "sort"), ORDERS, ids=[f"{s}-{o or 'default'}" for s, o in ORDERS]
)
def test_pages_follow_the_order_across_pages(admin_client, status, sort):
    jobs = _rows(status)
    seen, pages = _walk(admin_client, status, sort)
    assert pages == 3
    assert len(seen) == len(set(seen)) == ROWS
    assert seen == _expected(jobs, queries.LISTINGS[status][sort])


@pytest.mark.parametrize(
    ("status", "first", "then"),
    [("succeeded", "", "oldest"), ("failed", "", "oldest"), ("cancelled", "", "oldest"),
     ("scheduled", "", "latest"), ("ready", "oldest", "newest"), ("running", "oldest", "newest")],
)  # fmt: skip
def test_the_two_directions_are_mirror_images(admin_client, status, first, then):
    _rows(status)
    one, _ = _walk(admin_client, status, first)
    other, _ = _walk(admin_client, status, then)
    assert one == other[::-1]


def test_the_order_carries_to_the_next_page_and_the_bulk_form(admin_client):
    for _ in range(queries.PAGE_SIZE + 1):
        make_job("failed")
    response = admin_client.get(reverse("jobs:list", args=["failed"]), {"sort": "oldest"})
    assert "sort=oldest" in response.context["next_url"]
    body = response.content.decode()
    assert '<option value="oldest" selected>Failed longest ago first</option>' in body
    assert '<input type="hidden" name="sort" value="oldest">' in body
    assert "Clear filters" not in body  # an order is no filter


def test_a_list_with_one_order_offers_no_choice(admin_client):
    make_job("blocked")
    body = admin_client.get(reverse("jobs:list", args=["blocked"])).content.decode()
    assert 'name="sort"' not in body.split('id="bulk"')[0]


@pytest.mark.parametrize(("status", "sort"), [("failed", "newest"), ("blocked", "oldest")])
def test_an_unknown_order_is_400(admin_client, status, sort):
    assert admin_client.get(reverse("jobs:list", args=[status]), {"sort": sort}).status_code == 400


@pytest.mark.parametrize(
    "cursor", ["", "x", "1,2", "not-a-time,5", "2026-01-01T00:00:00,5"], ids=repr
)
def test_a_cursor_of_another_shape_is_400(admin_client, cursor):
    # ("2026-01-01T00:00:00" has no offset: cursors carry theirs.)
    response = admin_client.get(
        reverse("jobs:list", args=["failed"]), {"sort": "oldest", "after": cursor or ","}
    )
    assert response.status_code == 400


class TestPlans:
    """On a table of history, every order's first and later pages read a partial index."""

    @pytest.mark.parametrize(("status", "sort"), ORDERS, ids=[f"{s}-{o or 'x'}" for s, o in ORDERS])
    def test_every_order_reads_its_partial_index(self, admin_client, status, sort):
        add_history_and_future(20_000, 5_000, now=timezone.now())
        for _ in range(queries.PAGE_SIZE + 2):
            make_job(status)
        first = admin_client.get(reverse("jobs:list", args=[status]), {"sort": sort})
        with CaptureQueriesContext(connection) as captured:
            admin_client.get(first.context["next_url"], {"partial": "1"})
        [sql] = [q["sql"] for q in captured.captured_queries if "jobs_job" in q["sql"]]
        test_dashboard_queries.TestOverviewPlans.assert_reads_partial_indexes(sql)
