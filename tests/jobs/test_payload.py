"""The JSON codec and the rule for what a payload may call."""

import datetime
import uuid
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from jobs import payload
from jobs.models import Job
from jobs.testing import work_off
from tests.testapp.models import Event, Photo

UTC = datetime.UTC


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        2.5,
        "text",
        [1, [2, "x"]],
        {"a": {"b": [1]}},
        datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime.date(2026, 1, 2),
        datetime.time(3, 4, 5),
        datetime.timedelta(days=2, seconds=3, microseconds=4),
        Decimal("12.3400"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        (1, "two", (3,)),
        {1, 2, 3},
        {payload.TAG: "model", "looks": "like a tag"},
    ],
)
def test_round_trip(value):
    encoded = payload.encode(value)
    assert payload.decode(encoded) == value
    assert type(payload.decode(encoded)) is type(value)


def test_model_instances_are_stored_by_primary_key(db):
    photo = Photo.objects.create(title="cat")
    encoded = payload.encode({"photo": photo})
    assert encoded == {
        "photo": {payload.TAG: "model", "app": "testapp", "model": "photo", "pk": photo.pk}
    }
    Photo.objects.filter(pk=photo.pk).update(title="renamed")
    assert payload.decode(encoded)["photo"].title == "renamed"


def test_deleted_instance_is_a_deserialization_error(db):
    photo = Photo.objects.create(title="cat")
    encoded = payload.encode(photo)
    photo.delete()
    with pytest.raises(payload.DeserializationError, match=r"Photo with pk=.* no longer exists"):
        payload.decode(encoded)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (object(), TypeError, r"args\[0\]: object values cannot be stored"),
        (b"bytes", TypeError, "bytes values cannot be stored"),
        (datetime.datetime(2026, 1, 1), ValueError, "naive datetime"),
        (float("nan"), ValueError, "cannot be stored as JSON"),
        ({1: "int key"}, TypeError, "keys must be strings"),
        (lambda: 1, TypeError, "function values cannot be stored"),
    ],
)
def test_unstorable_values_name_the_culprit(value, error, message):
    with pytest.raises(error, match=message):
        payload.encode([value], "args")


def test_unsaved_instance_is_refused():
    with pytest.raises(ValueError, match="unsaved Photo"):
        payload.encode(Photo(title="x"))


def _hostile_job(**call):
    return Job.objects.create(name="hostile", payload={"v": 1, **call})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"function": "os.system", "args": ["touch /tmp/pwned"]}, "Refusing to call os.system"),
        ({"function": "builtins.eval", "args": ["1"]}, "Refusing to call builtins.eval"),
        ({"function": "subprocess.run", "args": [["true"]]}, "Refusing to call subprocess.run"),
        # Allowed module, but a name it imported from elsewhere.
        ({"function": "tests.testapp.jobs.os", "args": []}, "not a function defined in"),
        ({"function": "tests.testapp.jobs.missing", "args": []}, "Cannot import"),
        ({"function": "nodots", "args": []}, "Invalid import path"),
        (
            {
                "receiver": {payload.TAG: "class", "path": "tests.testapp.models.Photo"},
                "method": "__init_subclass__",
            },
            "Refusing to call method",
        ),
        (
            {"job": {payload.TAG: "object", "class": "os.PathLike", "state": {}}},
            "Refusing to call os.PathLike",
        ),
        ({"nothing": 1}, "names nothing to call"),
    ],
)
def test_hostile_payloads_are_refused_and_fail_at_once(db, call, message):
    job = _hostile_job(**call)
    result = work_off()
    job.refresh_from_db()
    assert result.outcomes == ("failed",)
    assert job.status == Job.Status.FAILED
    assert job.attempts == 1  # no retries for a payload that can never run
    assert message in job.last_error
    assert job.errors[0]["exception_class"] == "jobs.payload.DeserializationError"


@pytest.mark.parametrize("raw", ["not json at all", [1, 2], {"v": 99}, 7])
def test_unreadable_payloads_fail_with_a_message(db, raw):
    job = Job.objects.create(name="garbage", payload=raw)
    assert work_off().outcomes == ("failed",)
    job.refresh_from_db()
    assert "Unreadable payload" in job.last_error


def test_the_database_refuses_malformed_json_rows(db):
    # Both databases validate the column, so a "malformed JSON" poison row
    # cannot exist; what can exist is valid JSON of the wrong shape (above).
    job = Job.objects.create(name="bad", payload={})
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE jobs_job SET payload = '{not json' WHERE id = %s", [job.pk])


def test_forbidden_module_is_not_even_imported(db, monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "antigravity", raising=False)
    _hostile_job(function="antigravity.geohash", args=[1, 2, b"x".hex()])
    work_off()
    assert "antigravity" not in sys.modules
    assert Event.objects.count() == 0


def test_allowed_modules_setting_extends_the_rule(db, settings):
    settings.JOBS = {**settings.JOBS, "ALLOWED_MODULES": ["json"]}
    _hostile_job(function="json.dumps", args=[[1]])
    # json.dumps is a module-level Python function of an allowed module.
    assert work_off().outcomes == ("succeeded",)
