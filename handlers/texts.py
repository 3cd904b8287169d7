"""Helpers for reply texts (HTML). The prose itself lives in the catalogues (`bot/i18n`)."""

import html

from bot.delivery.render import shorten
from bot.i18n import Texts
from bot.matching import QueryError

ECHO_CHARS = 600  # user text repeated inside an error, at most
# RE2's reasons for refusing a regex (`missing ): (`), by their English prefix, and the
# catalogue text of each (`regex-reason-<key>`): the chat reads them in its language.
_REGEX_REASONS = {
    "invalid escape sequence": "escape",
    "invalid character class range": "class-range",
    "invalid character class": "class",
    "missing ]": "missing-bracket",
    "missing )": "missing-paren",
    "unexpected )": "unexpected-paren",
    "trailing \\": "trailing-backslash",
    "no argument for repetition operator": "no-repeat-argument",
    "invalid repetition size": "repeat-size",
    "bad repetition operator": "bad-repeat",
    "invalid perl operator": "perl-operator",
    "invalid UTF-8": "utf8",
    "invalid named capture group": "named-group",
}


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
    reason = error.details.get("reason")
    if error.key == "regex-invalid" and isinstance(reason, str):
        details["reason"] = regex_reason(t, reason)
    text = t(f"query-error-{error.key}", **details)
    if error.position is None:
        return text
    return t("query-error-at", error=text, position=error.position + 1)


def regex_reason(t: Texts, reason: str) -> str:
    """RE2's reason in the chat's language, the part of the regex it names as code; a reason
    RE2 gives that is not known here stays as it is (escaped)."""
    head, _, fragment = reason.partition(": ")
    key = _REGEX_REASONS.get(head)
    if key is None:
        return escaped(shorten(reason, ECHO_CHARS))
    text = t(f"regex-reason-{key}")
    return f"{text}: {code(shorten(fragment, ECHO_CHARS))}" if fragment else text


def query_invalid(t: Texts, error: QueryError, command: str) -> str:
    """The reply to a malformed query: what is wrong and where, and a correct example."""
    return t("query-invalid", error=query_error(t, error), example=example(t, command))
