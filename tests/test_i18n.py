"""The catalogues: every message in every language, valid Fluent, the same arguments, plurals."""

from __future__ import annotations

import re

import pytest
from fluent.syntax import FluentParser, ast

from bot.i18n import ENGLISH, LANGUAGES, Catalog, MissingText, language_for
from bot.matching import QueryError, parse_query
from handlers.texts import query_invalid

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


@pytest.mark.parametrize(
    "query", ["/(/", "/[a/", "/a)/", "/*/", "/a{1001}/", "/a**/", "/(?i/", r"/\q/", "/[z-a]/"]
)
def test_a_bad_regex_is_explained_in_russian_not_in_re2s_english(query: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    text = query_invalid(CATALOG.texts("ru"), caught.value, "subscribe")
    prose = re.sub(r"<code>.*?</code>", " ", text.split("\n")[0])
    assert re.findall(r"[A-Za-z]{3,}", prose) == [], text
    assert "<code>" in text.split("\n")[0]  # the part of the regex RE2 named, as written


@pytest.mark.parametrize(
    ("count", "places", "failures"),
    [
        (1, "1 место", "1 раз;"),
        (2, "2 места", "2 раза подряд"),
        (5, "5 мест", "5 раз подряд"),
        (11, "11 мест", "11 раз подряд"),
        (21, "21 место", "21 раз подряд"),
        (22, "22 места", "22 раза подряд"),
        (25, "25 мест", "25 раз подряд"),
    ],
)
def test_russian_plurals_of_free_places_failures_and_previews(
    count: int, places: str, failures: str
) -> None:
    t = CATALOG.texts("ru")
    assert f"только {places} из" in t("presets-toast-too-many", count=3, free=count, limit=100)
    assert failures in t("health-failing", count=count, error="e", last_ok="x")
    # More than one post matched: the newest are listed after it, and the text says so.
    preview = t("subscribe-preview", count=count, days=7)
    assert ("самые свежие" in preview) == (count > 1)


def test_the_oldest_waiting_message_reads_as_russian() -> None:
    t = CATALOG.texts("ru")
    age = t("stats-age-minutes", count=1)
    assert t("stats-outbox", count=2, age=age).endswith("самое старое ждёт 1 минуту")
