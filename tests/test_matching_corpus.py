"""Held-out-style corpora: channel posts, saved queries, and the posts each query's author wants.

`tests/data/matching/corpus.json` and `corpus2.json` each hold posts (Russian, Ukrainian and
English, written like Telegram channels, OSINT accounts and think tanks) and the queries an
analyst would save, written by different people, independently of the matcher. For each
query, `want` lists the posts its author wants; every other post is unwanted. The labels are
a person's judgment, not the matcher's output, so a failure here is a post a user would miss
or an alert they would not want — each one is printed with its text. `word_sense_confusions`
lists posts that use a tracked name in another sense (a hazel bush, a football club):
matching goes by form, not meaning, so those are known; any other false hit fails.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bot.domain import Subscription
from bot.matching import QueryIndex, QueryMatcher, parse_query

NOW = datetime(2026, 11, 20, tzinfo=UTC)
DATA = Path(__file__).parent / "data" / "matching"
NAMES = ("corpus.json", "corpus2.json")
MIN_RECALL = 0.99


@cache
def corpus(name: str) -> dict[str, Any]:
    with (DATA / name).open(encoding="utf-8") as file:
        loaded: dict[str, Any] = json.load(file)
    return loaded


def posts(name: str) -> dict[str, str]:
    return {post["id"]: post["text"] for post in corpus(name)["posts"]}


def queries(name: str) -> dict[str, set[str]]:
    return {item["query"]: set(item["want"]) for item in corpus(name)["queries"]}


@cache
def found_by_index(name: str) -> dict[str, set[str]]:
    """For each query, the posts it matches, with every query in one index (as in the service)."""
    wanted = queries(name)
    index = QueryIndex(Subscription(n, n, query, NOW) for n, query in enumerate(wanted))
    found: dict[str, set[str]] = {query: set() for query in wanted}
    for post_id, text in posts(name).items():
        for hit in index.match(text):
            found[hit.subscription.query].add(post_id)
    return found


@pytest.mark.parametrize("name", NAMES)
def test_the_corpus_is_well_formed(name: str) -> None:
    data = corpus(name)
    ids = [post["id"] for post in data["posts"]]
    assert len(ids) == len(set(ids)), "post ids must be unique"
    assert len(data["queries"]) == len(queries(name)), "queries must be unique"
    assert len(ids) >= 60
    assert len(data["queries"]) >= 25
    for lang in ("ru", "uk", "en"):
        assert sum(1 for post in data["posts"] if post["lang"] == lang) >= 20, lang
    for query, wanted in queries(name).items():
        parse_query(query)  # every saved query is valid
        assert wanted, f"{query!r} wants no post"
        assert wanted <= set(ids), f"{query!r} wants unknown posts {wanted - set(ids)}"
        assert len(wanted) < len(ids) / 2, f"{query!r} wants too much to say anything"


@pytest.mark.parametrize("name", NAMES)
def test_recall_and_no_false_hits(name: str) -> None:
    wanted_by, found = queries(name), found_by_index(name)
    text = posts(name)
    known = {tuple(pair) for pair in corpus(name).get("word_sense_confusions", [])}
    misses = [(q, p) for q in wanted_by for p in sorted(wanted_by[q] - found[q])]
    false_hits = [
        (q, p) for q in wanted_by for p in sorted(found[q] - wanted_by[q]) if (q, p) not in known
    ]
    wanted = sum(len(posts) for posts in wanted_by.values())
    recall = (wanted - len(misses)) / wanted
    report = [
        f"{name}: recall {recall:.3f} ({wanted - len(misses)}/{wanted}),"
        f" false hits {len(false_hits)} (besides {len(known)} known word-sense confusions)"
    ]
    for title, pairs in (
        ("MISSED (wanted, not found)", misses),
        ("FALSE HITS (found, not wanted)", false_hits),
    ):
        if pairs:
            report.append(f"--- {title}:")
            report.extend(f"  {query!r} -> {post}: {text[post]!r}" for query, post in pairs)
    message = "\n".join(report)
    assert recall >= MIN_RECALL, message
    assert not false_hits, message


@pytest.mark.parametrize(
    ("name", "query"), [(name, query) for name in NAMES for query in queries(name)]
)
def test_index_agrees_with_each_query_alone(name: str, query: str) -> None:
    # The corpus test reads the index; each query on its own must answer the same.
    matcher = QueryMatcher(query)
    alone = {post_id for post_id, text in posts(name).items() if matcher.spans(text) is not None}
    assert alone == found_by_index(name)[query]
