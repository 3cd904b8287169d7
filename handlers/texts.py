"""Helpers for reply texts (HTML). The prose itself lives in the catalogues (`bot/i18n`)."""

import html

from bot.i18n import Texts


def code(text: str) -> str:
    """`text` escaped, as code (a query, a command, a source spec in a reply)."""
    return f"<code>{html.escape(text, quote=False)}</code>"


def escaped(text: str) -> str:
    """User or library text, escaped for a reply."""
    return html.escape(text, quote=False)


def example(t: Texts, command: str) -> str:
    """`/command <example query>` as code, in the chat's language."""
    return code(f"/{command} {t('example-query')}")


def query_invalid(t: Texts, error: str, command: str) -> str:
    """The reply to a malformed query: what is wrong and where, and a correct example."""
    return t("query-invalid", error=escaped(error), example=example(t, command))
