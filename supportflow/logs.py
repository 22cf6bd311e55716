"""Log context and formats: every line says which request, ticket and Celery task it belongs to.

The context lives in ``contextvars``, so it follows a request through Django's sync/async hops and a
websocket through its consumer, and never leaks between requests. The request id travels to the
worker in the task's message headers (``supportflow.celery``): a customer's message, the task that
answers it and any task that task enqueues all log the same ``request_id``.

``LOG_FORMAT=json`` writes one JSON object per line (``ts``, ``level``, ``logger``, ``message``, then
``request_id``, ``ticket``, ``task_id``, ``task_name`` when set, ``exc`` with a traceback); ``plain``
(the default for ``make run``) appends the same context as ``key=value`` to the classic line.
Nothing here logs request bodies, headers or message text: only what the code itself logs, with
customers' conversation tokens taken out of logged paths.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
FIELDS = ("request_id", "ticket", "task_id", "task_name")

_vars: dict[str, ContextVar[str]] = {name: ContextVar(f"sf_log_{name}", default="") for name in FIELDS}


# A customer's conversation link is a credential (it opens the conversation for 90 days), and Django and
# uvicorn log request paths: the token in those paths is replaced before a line is written.
CHAT_TOKEN_RE = re.compile(r"(/chat/c/|/ws/chat/)[^/\s?#\"']+")


def redact(text: str) -> str:
    return CHAT_TOKEN_RE.sub(r"\1[token]", text)


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_token(value: str | bytes | None) -> str | None:
    """``value`` if it is a sane token (≤ 64 of ``[A-Za-z0-9._-]``), else ``None``. For ids that come
    from outside (a client's request id, a task header): anything else could forge log lines or blow
    up their size."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if value and REQUEST_ID_RE.fullmatch(value):
        return value
    return None


def log_context() -> dict[str, str]:
    """The context fields that are set, e.g. ``{"request_id": "…", "ticket": "SF-001000"}``."""
    return {name: value for name, var in _vars.items() if (value := var.get())}


def set_log_context(**values: str | None) -> None:
    """Add fields to the current context (``ticket="SF-001000"``); ``None`` or ``""`` clears a field.
    They last until the request, socket or task that opened the context ends (or the next one starts)."""
    for name, value in values.items():
        _vars[name].set(str(value) if value else "")


def push_context(values: dict[str, str | None]) -> list[tuple[ContextVar[str], Token[str]]]:
    """Set fields; returns what ``pop_context`` needs to restore the previous values."""
    return [(_vars[name], _vars[name].set(str(value) if value else "")) for name, value in values.items()]


def pop_context(tokens: list[tuple[ContextVar[str], Token[str]]]) -> None:
    for var, token in reversed(tokens):
        try:
            var.reset(token)
        except ValueError:  # a token from another context (should not happen): clear instead
            var.set("")


@contextmanager
def bound(**values: str | None) -> Iterator[None]:
    """Set fields for the block, then restore what was there before — whatever the block set since.
    Fields not named are cleared for the block, so nothing from an earlier unit of work leaks in."""
    tokens = push_context({name: values.get(name) for name in FIELDS})
    try:
        yield
    finally:
        pop_context(tokens)


class ContextFilter(logging.Filter):
    """Puts the context fields on every record (empty strings when unset), for any formatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _vars.items():
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return True


# Standard LogRecord attributes, and uvicorn's ANSI-coloured copy of its message: not extra fields.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
    *FIELDS,
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line. ``extra={...}`` fields a caller passes are kept when they are plain
    values (e.g. django.request's ``status_code``); objects (its ``request``) are left out, so no repr
    of a request, with its query string or headers, ends up in the logs."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "process": record.process,
        }
        for name in FIELDS:
            value = getattr(record, name, "") or _vars[name].get()
            if value:
                entry[name] = value
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_") and isinstance(value, str | int | float | bool):
                entry.setdefault(key, value)
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """The classic line, with the context appended as ``key=value`` when there is any."""

    def format(self, record: logging.LogRecord) -> str:
        line = redact(super().format(record))
        context = [(name, getattr(record, name, "") or _vars[name].get()) for name in FIELDS]
        suffix = " ".join(f"{name}={value}" for name, value in context if value)
        if not suffix:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first} [{suffix}]{newline}{rest}"


class RequestIdMiddleware:
    """Gives every request an id: the client's ``X-Request-ID`` when it is a sane token, else a new
    one. It is in the log context for the whole request (and the tasks it enqueues) and is echoed in
    the response's ``X-Request-ID``, so a user's report can be matched to the server's logs.

    The context is replaced at the start of each request rather than reset at its end: Django logs
    4xx/5xx responses (``django.request``) after the middleware chain, and those lines need the id most.
    Under ASGI every request has a context of its own anyway; a reused WSGI thread gets fresh values
    with its next request."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    @staticmethod
    def _start(request) -> str:
        request_id = clean_token(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
        request.request_id = request_id
        push_context({name: request_id if name == "request_id" else None for name in FIELDS})
        return request_id

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        request_id = self._start(request)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response

    async def __acall__(self, request):
        request_id = self._start(request)
        response = await self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


class RequestIdASGIMiddleware:
    """The same for websockets: one request id per connection (from its ``X-Request-ID`` header when
    sane), in the log context of everything the consumer does for that socket."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or ())
        request_id = clean_token(headers.get(REQUEST_ID_HEADER.lower().encode())) or new_request_id()
        with bound(request_id=request_id):
            return await self.app(scope, receive, send)
