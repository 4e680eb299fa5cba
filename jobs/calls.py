"""The performables a payload describes, and ``load()``, which makes them.

A decoded payload is a "performable": an object with perform() and a
display_name, plus any of the optional hooks (before, after, success, error,
failure, reschedule_at...). Job objects are performables already; the classes
here wrap the calls that delay() and handle_asynchronously record, and
jobs.taskcalls wraps django.tasks tasks.
"""

from django.core.mail import EmailMessage

from .payload import TAG, DeserializationError, decode, receiver_name, resolve, version_check
from .taskcalls import TaskCall


def _call_target(attribute, args, kwargs):
    # handle_asynchronously wrappers enqueue when called: run the original.
    target = (
        getattr(attribute, "now", attribute)
        if getattr(attribute, "_jobs_async", False)
        else attribute
    )
    return target(*args, **kwargs)


class FunctionCall:
    def __init__(self, function, args, kwargs):
        self.function, self.args, self.kwargs = function, args, kwargs

    @property
    def display_name(self):
        return f"{self.function.__module__}.{self.function.__qualname__}"

    def perform(self):
        return _call_target(self.function, self.args, self.kwargs)


class MethodCall:
    def __init__(self, receiver, method, args, kwargs):
        self.receiver, self.method, self.args, self.kwargs = receiver, method, args, kwargs

    @property
    def display_name(self):
        return receiver_name(self.receiver, self.method)

    def perform(self):
        return _call_target(getattr(self.receiver, self.method), self.args, self.kwargs)


class MailCall:
    """Build a message with a Mailer method and send it, both in the worker."""

    def __init__(self, mailer_class, method, args, kwargs):
        self.mailer_class, self.method, self.args, self.kwargs = mailer_class, method, args, kwargs

    @property
    def display_name(self):
        return f"{self.mailer_class.__name__}.{self.method}"

    def perform(self):
        message = getattr(self.mailer_class(), self.method)(*self.args, **self.kwargs)
        if message is None:  # the mailer decided there is nothing to send
            return 0
        if not isinstance(message, EmailMessage):
            raise TypeError(
                f"{self.display_name} returned {type(message).__name__}, not an EmailMessage."
            )
        return message.send(using=self.mailer_class.mailer)


def load(data):
    """The performable a payload describes. Raises DeserializationError."""
    data = version_check(data)
    try:
        if "task" in data:  # a django.tasks task, enqueued through jobs.backends
            return TaskCall.from_payload(data)
        args = decode(data.get("args", []))
        kwargs = decode(data.get("kwargs", {}))
        if "job" in data:
            return decode(data["job"])
        if "function" in data:
            return FunctionCall(resolve(data["function"], kind="function"), args, kwargs)
        if "mailer" in data:
            return MailCall(resolve(data["mailer"], kind="class"), data["method"], args, kwargs)
        if "receiver" in data:
            method = data["method"]
            if not isinstance(method, str) or method.startswith("_"):
                raise DeserializationError(f"Refusing to call method {method!r}.")
            receiver = data["receiver"]
            if isinstance(receiver, dict) and receiver.get(TAG) == "class":
                receiver = resolve(receiver["path"], kind="class")
            else:
                receiver = decode(receiver)
            return MethodCall(receiver, method, args, kwargs)
    except (KeyError, TypeError, ValueError) as exc:
        raise DeserializationError(f"Malformed payload: {exc!r}") from exc
    raise DeserializationError("Payload names nothing to call.")
