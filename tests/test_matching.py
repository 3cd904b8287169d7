"""The first matcher: whole words, phrases, OR, AND; the index returns spans to bold."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain import Subscription
from bot.matching import QueryError, QueryIndex, parse_query
from bot.matching.index import query_matches

NOW = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("Oreshnik", "The Oreshnik missile", True),
        ("oreshnik", "THE ORESHNIK MISSILE", True),
        ("INF", "new info on infantry", False),
        ("INF", "after the INF, nothing", True),
        ('"INF Treaty"', "the INF Treaty collapsed", True),
        ('"INF Treaty"', "the Treaty on INF", False),
        ("Oreshnik OR Орешник", "комплекс «Орешник» на марше", True),
        ("Oreshnik | Iskander", "Iskander-M brigade", True),
        ("Oreshnik Belarus", "Oreshnik in Belarus", True),
        ("Oreshnik Belarus", "Oreshnik in Russia", False),
        ("Искандер-М", "ОТРК «Искандер-М» на учениях", True),
        ("мораторий", "объявила мораторий на размещение", True),
        ("Ёлка", "елка", True),
        ("#Орешник", "#Орешник новости", True),
        ("Oreshnik", "🚨Oreshnik🚨 claims", True),
    ],
)
def test_query_table(query: str, text: str, expected: bool) -> None:
    assert query_matches(query, text) is expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ('"unclosed', "never closed"),
        ("OR Oreshnik", "before it"),
        ("Oreshnik OR", "after it"),
        ("a OR OR b", "before it"),
        ('""', "no letters"),
        ("x" * 501, "longer than 500"),
        (" ".join(["w"] * 51), "at most 50"),
    ],
)
def test_malformed_queries_say_what_is_wrong(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(query)


def test_index_returns_each_matching_subscription_with_spans() -> None:
    subscriptions = [
        Subscription(1, 10, "Oreshnik", NOW),
        Subscription(2, 10, '"INF Treaty"', NOW),
        Subscription(3, 20, "Iskander", NOW),
    ]
    index = QueryIndex(subscriptions)
    text = "Oreshnik and the INF Treaty"
    hits = {hit.subscription.id: hit.spans for hit in index.match(text)}
    assert set(hits) == {1, 2}
    assert [text[s.start : s.end] for s in hits[1]] == ["Oreshnik"]
    assert [text[s.start : s.end] for s in hits[2]] == ["INF", "Treaty"]


def test_common_word_in_an_and_query_does_not_make_it_a_candidate_everywhere() -> None:
    index = QueryIndex([Subscription(1, 10, "Kapustin ракета", NOW)])
    assert index.match("ракета ракета ракета") == []
    assert len(index.match("ракета с полигона Kapustin")) == 1
