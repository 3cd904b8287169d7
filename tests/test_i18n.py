"""The catalogues: every message in every language, valid Fluent, the same arguments, plurals."""

from __future__ import annotations

import re

import pytest
from fluent.syntax import FluentParser, ast

from bot.i18n import ENGLISH, LANGUAGES, Catalog, MissingText, language_for

CATALOG = Catalog(strict=True)
_PLACEABLE = re.compile(r"\{\s*\$([a-z_]+)")


def _messages(language: str) -> dict[str, set[str]]:
    """Message id → the arguments it uses, over all of a language's files."""
    found: dict[str, set[str]] = {}
    parser = FluentParser()
    for name, text in CATALOG.sources(language).items():
        resource = parser.parse(text)
        junk = [entry for entry in resource.body if isinstance(entry, ast.Junk)]
        assert not junk, f"{language}/{name}: {[j.content[:80] for j in junk]}"
        for entry in resource.body:
            if isinstance(entry, ast.Message):
                key = entry.id.name
                assert key not in found, f"{language}: {key} is defined twice"
                source = text[entry.span.start : entry.span.end] if entry.span else ""
                found[key] = set(_PLACEABLE.findall(source))
    return found


def test_every_language_has_every_message_with_the_same_arguments() -> None:
    english = _messages(ENGLISH)
    assert english
    for language in LANGUAGES:
        other = _messages(language)
        assert sorted(set(english) - set(other)) == [], f"{language} lacks these"
        assert sorted(set(other) - set(english)) == [], f"{language} has extra ones"
        for key, arguments in english.items():
            assert other[key] == arguments, f"{language}:{key} uses {other[key]}"


@pytest.mark.parametrize(
    ("count", "expected"),
    [(1, "1 запрос"), (2, "2 запроса"), (5, "5 запросов"), (21, "21 запрос"), (11, "11 запросов")],
)
def test_russian_plurals(count: int, expected: str) -> None:
    text = CATALOG.texts("ru")("subscribe-too-many", count=count)
    assert expected in text


def test_english_plurals() -> None:
    t = CATALOG.texts("en")
    assert "1 post matches" in t("search-found", count=1, query="q")
    assert "3 posts match" in t("search-found", count=3, query="q")


def test_a_missing_message_is_an_error_and_a_missing_argument_too() -> None:
    t = CATALOG.texts("ru")
    with pytest.raises(MissingText):
        t("no-such-message")
    with pytest.raises(ValueError, match="search-found"):
        t("search-found", query="q")  # no count


@pytest.mark.parametrize(
    ("code", "language"),
    [
        ("ru", "ru"),
        ("uk", "ru"),
        ("be", "ru"),
        ("ru-RU", "ru"),
        ("en", "en"),
        ("de", "en"),
        (None, "en"),
    ],
)
def test_language_follows_telegram_language_code(code: str | None, language: str) -> None:
    assert language_for(code) == language


def test_no_unicode_isolation_marks_in_output() -> None:
    # Fluent wraps arguments in FSI/PDI marks by default; Telegram would show them as junk.
    text = CATALOG.texts("ru")("subscribe-done", query="<code>x</code>")
    assert "\u2068" not in text
    assert "\u2069" not in text
