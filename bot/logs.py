"""Log output: the plain lines an operator reads, or one JSON object per line (LOG_FORMAT=json)
for a log collector, with what a record is about: its `source`, `chat_id` and `post`.

The context comes from `log_context(...)`, a block around work on one source, chat or post:

    with log_context(source="rss:https://example.org/feed", post="rss/example.org/42"):
        await ingest.handle(post)  # every record logged in here carries both fields

or from `extra=` on one call: `log.warning("...", extra={"chat_id": chat_id})` (a field given
this way wins over the context). The context lives in a `contextvars.ContextVar`, so it follows
the code through `await`, and a task created inside the block (`asyncio.create_task`,
`TaskGroup.create_task`) starts with a copy of it: a source's task created within
`log_context(source=...)` logs that source for its whole life, and what it sets later stays in
it. Work handed to a thread by `asyncio.to_thread` carries it too; a bare
`loop.run_in_executor` or `threading.Thread` does not (use `contextvars.copy_context().run`).

Secrets are hidden in both formats: `bot.redact.install_log_redaction` (on the same handler)
redacts the message, traceback and stack of every record before it is formatted, and the JSON
formatter redacts the fields that filter does not see, the context's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Literal

LogFormat = Literal["plain", "json"]
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONTEXT_FIELDS = ("source", "chat_id", "post")

_EMPTY: Mapping[str, object] = MappingProxyType({})
_context: ContextVar[Mapping[str, object]] = ContextVar("dozor_log_context", default=_EMPTY)


@contextmanager
def log_context(
    *, source: str | None = None, chat_id: int | None = None, post: str | None = None
) -> Iterator[None]:
    """Tag every record logged inside the block (and in tasks created inside it) with these
    fields; a field left None keeps the value of an enclosing block. Blocks nest."""
    given = {"source": source, "chat_id": chat_id, "post": post}
    token = _context.set(
        MappingProxyType({**_context.get(), **{k: v for k, v in given.items() if v is not None}})
    )
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> Mapping[str, object]:
    """The fields `log_context` has set here (read-only)."""
    return _context.get()


def _utc_time(created: float) -> str:
    """ISO 8601 in UTC with milliseconds: 2025-01-31T08:00:00.123Z."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time, level, logger, message, and when they
    apply exc (the formatted traceback), stack, source, chat_id and post. The record comes
    redacted (`RedactingFilter`); `redact` is applied to the context fields."""

    def __init__(self, redact: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self._redact = redact or (lambda text: text)

    def format(self, record: logging.LogRecord) -> str:
        redact = self._redact
        entry: dict[str, object] = {
            "time": _utc_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        context = _context.get()
        for field in CONTEXT_FIELDS:
            value = record.__dict__.get(field, context.get(field))  # extra= wins
            if value is None:
                continue
            if isinstance(value, str):
                value = redact(value)
            elif not isinstance(value, int | float | bool):
                value = redact(str(value))
            entry[field] = value
        return json.dumps(entry, ensure_ascii=False, default=str)


def make_formatter(
    fmt: LogFormat, redact: Callable[[str], str] | None = None
) -> logging.Formatter:
    """The formatter of LOG_FORMAT: the plain line (as ever), or JSON."""
    if fmt == "json":
        return JsonFormatter(redact)
    return logging.Formatter(PLAIN_FORMAT)
