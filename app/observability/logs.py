"""Structured JSON logs carrying the request id, merchant and order id where known."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
import time

# The request id of the work in progress: set per request by Flask and per job by the worker.
current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
# Further fields every line of the work in progress carries (order_id, merchant_id of a job).
current_log_fields: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "log_fields", default=None
)


def _request_fields() -> dict[str, str]:
    """request_id, merchant_id and order_id of the HTTP request being served, where known."""
    from flask import g, has_request_context, request

    if not has_request_context():
        return {}
    fields = {}
    if g.get("request_id"):
        fields["request_id"] = g.request_id
    # Only a user already loaded: a log line must never trigger a database query.
    user = g.get("_login_user")
    merchant_id = getattr(user, "merchant_id", None)
    if merchant_id:
        fields["merchant_id"] = merchant_id
    order_id = (request.view_args or {}).get("order_id")
    if order_id:
        fields["order_id"] = str(order_id)
    return fields

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_request_fields())
        entry.update(current_log_fields.get() or {})
        request_id = current_request_id.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = (
                    value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
                )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send logs to stderr as JSON lines (or plain text); idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_orderprocessing", False):
            root.removeHandler(existing)
    handler._orderprocessing = True
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries that narrate routine work at INFO.
    for noisy in ("alembic.runtime.plugins", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Throttled:
    """A warning logged at most once per `seconds` (with how many were held back), for what
    repeats on every request of an outage ("could not queue saga"): one line says it as well as
    hundreds, and a flood hides everything else."""

    def __init__(self, logger: logging.Logger, message: str, seconds: float = 10.0):
        self.logger, self.message, self.seconds = logger, message, seconds
        self._next = 0.0
        self._held_back = 0
        self._lock = threading.Lock()

    def warning(self, **extra) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                self._held_back += 1
                return
            held_back, self._held_back, self._next = self._held_back, 0, now + self.seconds
        self.logger.warning(self.message, extra={**extra, "held_back": held_back})
