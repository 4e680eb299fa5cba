"""A job's arguments as people read them, from its payload's JSON alone.

Nothing is decoded the way a worker does it (that would fetch model
instances and import code): tagged values are only spelled out, so a model
reads ``auth.user #7`` and a datetime its ISO text.
"""

import json

TAG = "__jobs__"  # jobs.payload.TAG: the key of a tagged value


def value_text(value) -> str:
    """One encoded value, Python-like: ``'ada'``, ``[1, 2]``, ``auth.user #7``."""
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        tag = value.get(TAG)
        match tag:
            case None:
                return "{" + ", ".join(f"{k!r}: {value_text(v)}" for k, v in value.items()) + "}"
            case "model":
                return f"{value.get('app')}.{value.get('model')} #{value_text(value.get('pk'))}"
            case "dict":
                return value_text(value.get("items", {}))
            case "tuple":
                items = [value_text(v) for v in value.get("items", [])]
                return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
            case "set":
                return "{" + ", ".join(value_text(v) for v in value.get("items", [])) + "}"
            case "object":
                return f"{value.get('class')}({call_text([], value.get('state') or {})})"
            case "timedelta":
                days, seconds, micro = value.get("value", [0, 0, 0])
                return f"timedelta(days={days}, seconds={seconds}, microseconds={micro})"
            case _:
                return str(value.get("value", value))
    return repr(value)


def call_text(args, kwargs) -> str:
    """``1, 'two', three=3``."""
    parts = [value_text(a) for a in args] if isinstance(args, list) else [value_text(args)]
    if isinstance(kwargs, dict):
        parts += [f"{k}={value_text(v)}" for k, v in kwargs.items()]
    return ", ".join(parts)


def arguments(payload) -> str:
    """The arguments of the call a payload describes (a job object's: its state)."""
    if not isinstance(payload, dict):
        return value_text(payload)
    if isinstance(payload.get("job"), dict):
        job = payload["job"]
        return call_text([], job.get("state") or {}) if job.get(TAG) == "object" else ""
    text = call_text(payload.get("args", []), payload.get("kwargs", {}))
    receiver = payload.get("receiver")
    if isinstance(receiver, dict) and receiver.get(TAG) == "model":
        text = f"on {value_text(receiver)}" + (f": {text}" if text else "")
    return text


def summary(payload_text: str, limit: int = 80) -> str:
    """A list row's one line from the payload's first characters (the rest stays in
    the database): the arguments when the text is whole, else the text cut short."""
    try:
        text = arguments(json.loads(payload_text))
    except ValueError:
        text = payload_text
    return text if len(text) <= limit else text[: limit - 1] + "…"
