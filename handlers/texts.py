"""Helpers for reply texts (HTML). The prose itself lives in the catalogues (`bot/i18n`)."""

import html

from bot.delivery.render import shorten
from bot.i18n import Texts
from bot.matching import QueryError

ECHO_CHARS = 600  # user text repeated inside an error, at most


def code(text: str) -> str:
    """`text` escaped, as code (a query, a command, a source spec in a reply)."""
    return f"<code>{html.escape(text, quote=False)}</code>"


def escaped(text: str) -> str:
    """User or library text, escaped for a reply."""
    return html.escape(text, quote=False)


def example(t: Texts, command: str) -> str:
    """`/command <example query>` as code, in the chat's language."""
    return code(f"/{command} {t('example-query')}")


def query_error(t: Texts, error: QueryError) -> str:
    """What is wrong with a query and where, in the chat's language (escaped HTML)."""
    if not error.key or not t.has(f"query-error-{error.key}"):
        return escaped(shorten(str(error), ECHO_CHARS))
    details = {
        name: escaped(shorten(value, ECHO_CHARS)) if isinstance(value, str) else value
        for name, value in error.details.items()
    }
    text = t(f"query-error-{error.key}", **details)
    if error.position is None:
        return text
    return t("query-error-at", error=text, position=error.position + 1)


def query_invalid(t: Texts, error: QueryError, command: str) -> str:
    """The reply to a malformed query: what is wrong and where, and a correct example."""
    return t("query-invalid", error=query_error(t, error), example=example(t, command))
