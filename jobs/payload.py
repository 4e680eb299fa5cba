"""What a job row says to call, as JSON, and the rule for what may be called.

Values beyond plain JSON are stored as small tagged objects,
``{"__jobs__": "<type>", ...}``. Model instances are stored by primary key and
fetched again when the job runs. Nothing is ever unpickled: a payload can name
only module-level functions and classes of installed apps (or of modules
listed in ``JOBS["ALLOWED_MODULES"]``), so a row written by an attacker cannot
call ``os.system`` or ``subprocess.run``.
"""

import datetime
import functools
import importlib
import inspect
import math
import uuid
from decimal import Decimal

from django.apps import apps
from django.db import models

from .conf import jobs_settings

TAG = "__jobs__"
FORMAT_VERSION = 1


class DeserializationError(Exception):
    """A payload that can never run: retrying it would not help."""


# -- values -------------------------------------------------------------------


def encode(value, where="value"):
    """Turn ``value`` into JSON-safe data, or raise naming ``where`` it failed."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} cannot be stored as JSON.")
        return value
    if isinstance(value, list):
        return [encode(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"{where}: dictionary keys must be strings, not {key!r}.")
        data = {key: encode(item, f"{where}[{key!r}]") for key, item in value.items()}
        # A user's dict that happens to use our tag key is escaped.
        return {TAG: "dict", "items": data} if TAG in data else data
    if isinstance(value, models.Model):
        return model_reference(value, where)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{where}: naive datetime {value!r}; use an aware datetime.")
        return {TAG: "datetime", "value": value.isoformat()}
    if isinstance(value, datetime.date):
        return {TAG: "date", "value": value.isoformat()}
    if isinstance(value, datetime.time):
        return {TAG: "time", "value": value.isoformat()}
    if isinstance(value, datetime.timedelta):
        return {TAG: "timedelta", "value": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Decimal):
        return {TAG: "decimal", "value": str(value)}
    if isinstance(value, uuid.UUID):
        return {TAG: "uuid", "value": str(value)}
    if isinstance(value, tuple):
        return {TAG: "tuple", "items": encode(list(value), where)}
    if isinstance(value, set | frozenset):
        return {TAG: "set", "items": encode(list(value), where)}
    raise TypeError(
        f"{where}: {type(value).__qualname__} values cannot be stored in a job. "
        "Use JSON types, model instances, datetimes, dates, times, timedeltas, "
        "Decimals, UUIDs, tuples or sets."
    )


def decode(data):
    """The inverse of encode(); fetches model instances from the database."""
    if isinstance(data, list):
        return [decode(item) for item in data]
    if not isinstance(data, dict):
        return data
    tag = data.get(TAG)
    if tag is None:
        return {key: decode(item) for key, item in data.items()}
    match tag:
        case "dict":
            return {key: decode(item) for key, item in data["items"].items()}
        case "model":
            return fetch_model_instance(data)
        case "datetime":
            return datetime.datetime.fromisoformat(data["value"])
        case "date":
            return datetime.date.fromisoformat(data["value"])
        case "time":
            return datetime.time.fromisoformat(data["value"])
        case "timedelta":
            days, seconds, microseconds = data["value"]
            return datetime.timedelta(days=days, seconds=seconds, microseconds=microseconds)
        case "decimal":
            return Decimal(data["value"])
        case "uuid":
            return uuid.UUID(data["value"])
        case "tuple":
            return tuple(decode(data["items"]))
        case "set":
            return set(decode(data["items"]))
        case "object":
            return restore_object(data)
    raise DeserializationError(f"Unknown value type {tag!r} in payload.")


def model_reference(instance, where="value"):
    if instance.pk is None:
        raise ValueError(
            f"{where}: unsaved {type(instance).__name__} instance; save it before "
            "enqueueing, so the worker can fetch it by primary key."
        )
    meta = instance._meta
    return {
        TAG: "model",
        "app": meta.app_label,
        "model": meta.model_name,
        "pk": encode(instance.pk, where),
    }


def fetch_model_instance(reference):
    try:
        model = apps.get_model(reference["app"], reference["model"])
    except LookupError as exc:
        raise DeserializationError(
            f"Unknown model {reference['app']}.{reference['model']}."
        ) from exc
    pk = decode(reference["pk"])
    try:
        return model._base_manager.get(pk=pk)
    except model.DoesNotExist:
        raise DeserializationError(
            f"{model.__name__} with pk={pk!r} no longer exists; the job cannot run."
        ) from None


def object_state(obj, where="value"):
    """A plain object (a job object, or a delay() receiver) as class + state."""
    try:
        state = vars(obj)
    except TypeError:
        raise TypeError(
            f"{where}: {type(obj).__qualname__} instances have no __dict__ to store."
        ) from None
    return {
        TAG: "object",
        "class": dotted_path(type(obj), where),
        "state": encode(state, f"{where}.__dict__"),
    }


def restore_object(data):
    cls = resolve(data["class"], kind="class")
    obj = cls.__new__(cls)
    obj.__dict__.update(decode(data["state"]))
    return obj


# -- what may be called -----------------------------------------------------------


def allowed_module(module_name: str) -> bool:
    """Whether the worker may import and call into ``module_name``."""
    return _allowed(module_name, jobs_settings().ALLOWED_MODULES)


@functools.lru_cache(maxsize=1024)
def _allowed(module_name: str, extra: tuple[str, ...]) -> bool:
    # Installed apps are fixed once Django has started; ALLOWED_MODULES is
    # part of the key, so a settings change is seen at once.
    prefixes = [config.name for config in apps.get_app_configs()] + list(extra)
    return any(module_name == p or module_name.startswith(p + ".") for p in prefixes)


def dotted_path(obj, where="value") -> str:
    """The import path of a module-level function or class, checked to be callable."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname:
        raise TypeError(f"{where}: {obj!r} has no importable name.")
    if "<lambda>" in qualname:
        raise TypeError(f"{where}: lambdas cannot be delayed; use a module-level function.")
    if "<locals>" in qualname or "." in qualname:
        raise TypeError(
            f"{where}: {qualname} is not defined at module level, so a worker cannot import it."
        )
    if not allowed_module(module):
        raise TypeError(
            f"{where}: {module}.{qualname} is outside the installed apps; add {module!r} "
            "to JOBS['ALLOWED_MODULES'] to let workers call it."
        )
    return f"{module}.{qualname}"


def resolve(path: str, kind: str):
    """Import ``path`` for a job, refusing anything the payload rules forbid.

    ``kind`` is "function" or "class". The module is checked before it is
    imported, since importing a module can itself run code.
    """
    if not isinstance(path, str) or "." not in path:
        raise DeserializationError(f"Invalid import path {path!r}.")
    module_name, _, name = path.rpartition(".")
    if not allowed_module(module_name):
        raise DeserializationError(
            f"Refusing to call {path}: {module_name!r} is not an installed app or "
            "listed in JOBS['ALLOWED_MODULES']."
        )
    try:
        module = importlib.import_module(module_name)
        obj = getattr(module, name)
    except (ImportError, AttributeError) as exc:
        raise DeserializationError(f"Cannot import {path}: {exc}") from exc
    if kind == "class":
        acceptable = inspect.isclass(obj)
    else:
        acceptable = inspect.isfunction(obj) or getattr(obj, "_jobs_async", False)
    if not acceptable or getattr(obj, "__module__", None) != module_name:
        raise DeserializationError(
            f"Refusing to call {path}: not a {kind} defined in {module_name}."
        )
    return obj


def check_method_name(name: str, where: str) -> None:
    if name.startswith("_"):
        raise AttributeError(f"{where}: private method {name!r} cannot be delayed.")


def version_check(payload) -> dict:
    if not isinstance(payload, dict) or payload.get("v") != FORMAT_VERSION:
        raise DeserializationError(f"Unreadable payload: {str(payload)[:200]!r}")
    return payload


def receiver_name(receiver, method):
    owner = receiver if inspect.isclass(receiver) else type(receiver)
    return f"{owner.__name__}.{method}"
