"""The worker's clock follows the database's, whatever its own says."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from jobs.clock import DatabaseClock, database_now

pytestmark = pytest.mark.django_db


def test_database_now_is_an_aware_datetime_close_to_ours():
    now = database_now()
    assert timezone.is_aware(now)
    assert abs(now - timezone.now()) < timedelta(seconds=2)


@pytest.mark.parametrize("skew", [timedelta(minutes=10), -timedelta(minutes=10)])
def test_a_skewed_process_corrects_itself_at_sync(skew):
    clock = DatabaseClock()
    with time_machine.travel(timezone.now() + skew):
        assert abs(clock.now() - database_now()) > timedelta(minutes=9)  # not synced yet
        offset = clock.sync()
        assert abs(offset + skew) < timedelta(seconds=2)
        assert abs(clock.now() - database_now()) < timedelta(seconds=2)
