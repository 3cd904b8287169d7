"""Secrets never leave the process: one redactor for log records and for error text we store.

Library errors carry request URLs, and the Bot API's URLs hold the bot token
(`…/bot123:AA…/sendMessage`), so an aiohttp error about a malformed answer would otherwise
print the token in the log and in `outbox.last_error`. The redactor replaces the configured
secrets wherever they appear, and anything shaped like a secret of a kind we use (a bot token,
a bearer token, a Telethon session string, a phone number) even when it is not ours.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

HIDDEN = "[redacted]"
MIN_SECRET_CHARS = 6  # shorter values (a blank, "0") would blank out ordinary words

_SHAPES = [
    # A bot token: `<bot id>:<35 characters>` — in URLs as `/bot<token>/`.
    (re.compile(r"\b\d{5,20}:[A-Za-z0-9_-]{30,}"), HIDDEN),
    # An Authorization header or its value: `Bearer AAAA…`.
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9%._~+/=-]{16,}"), r"\1" + HIDDEN),
    # A Telethon StringSession: version digit `1` and a long base64 body.
    (re.compile(r"\b1[A-Za-z0-9+/_-]{200,}={0,2}"), HIDDEN),
    # A phone number in international form (what `dozor login` asks for).
    (re.compile(r"(?<![\w+])\+\d[\d ()-]{6,18}\d\b"), HIDDEN),
]


class Redactor:
    """Replaces known secrets and secret-shaped strings in text."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: list[str] = []
        for secret in secrets:
            if secret:
                self.add(secret)

    def add(self, secret: str) -> None:
        """Hide `secret` from now on (also URL-encoded, and a bot token's secret half)."""
        secret = secret.strip()
        variants = {secret, quote(secret, safe="")}
        if ":" in secret:
            variants.add(secret.split(":", 1)[1])
        for variant in variants:
            if len(variant) >= MIN_SECRET_CHARS and variant not in self._secrets:
                self._secrets.append(variant)
        # Longest first, so a secret containing another is replaced whole.
        self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, HIDDEN)
        for pattern, replacement in _SHAPES:
            text = pattern.sub(replacement, text)
        return text


class RedactingFilter(logging.Filter):
    """A handler filter that redacts the whole record: message, arguments and traceback.

    It is attached to the root logger's handlers, so records from every library pass it
    (a filter on the root *logger* would miss records propagated from child loggers).
    """

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what there is, still redacted
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = self._redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True


def install_log_redaction(redact: Redactor) -> None:
    """Redact every record that reaches the root logger's handlers."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(redact))


def url_password(url: str) -> str | None:
    """The password a database URL holds, if any (to be redacted wherever it could appear)."""
    try:
        password = urlsplit(url).password
    except ValueError:  # a malformed URL: the driver will refuse it, in its own words
        return None
    return unquote(password) if password else None
