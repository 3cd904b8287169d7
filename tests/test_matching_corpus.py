"""A held-out-style corpus: channel posts, saved queries, and the posts each query's author wants.

`tests/data/matching/corpus.json` holds about 75 posts (Russian, Ukrainian and English, written
like Telegram channels, OSINT accounts and think tanks) and the queries an analyst would save.
For each query, `want` lists the posts its author wants; every other post is unwanted. The
labels are a person's judgment, not the matcher's output, so a failure here is a post a user
would miss or an alert they would not want — each one is printed with its text.
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
CORPUS_PATH = Path(__file__).parent / "data" / "matching" / "corpus.json"
MIN_RECALL = 0.99


def load_corpus() -> dict[str, Any]:
    with CORPUS_PATH.open(encoding="utf-8") as file:
        corpus: dict[str, Any] = json.load(file)
    return corpus


CORPUS = load_corpus()
POSTS: dict[str, str] = {post["id"]: post["text"] for post in CORPUS["posts"]}
QUERIES: dict[str, set[str]] = {item["query"]: set(item["want"]) for item in CORPUS["queries"]}


@cache
def found_by_index() -> dict[str, set[str]]:
    """For each query, the posts it matches, with every query in one index (as in the service)."""
    queries = list(QUERIES)
    index = QueryIndex(Subscription(n, n, query, NOW) for n, query in enumerate(queries))
    found: dict[str, set[str]] = {query: set() for query in queries}
    for post_id, text in POSTS.items():
        for hit in index.match(text):
            found[hit.subscription.query].add(post_id)
    return found


def test_the_corpus_is_well_formed() -> None:
    ids = [post["id"] for post in CORPUS["posts"]]
    assert len(ids) == len(set(ids)), "post ids must be unique"
    assert len(CORPUS["queries"]) == len(QUERIES), "queries must be unique"
    assert len(POSTS) >= 60
    assert len(QUERIES) >= 25
    for lang in ("ru", "uk", "en"):
        assert sum(1 for post in CORPUS["posts"] if post["lang"] == lang) >= 20, lang
    for query, wanted in QUERIES.items():
        parse_query(query)  # every saved query is valid
        assert wanted, f"{query!r} wants no post"
        assert wanted <= set(POSTS), f"{query!r} wants unknown posts {wanted - set(POSTS)}"
        assert len(wanted) < len(POSTS) / 2, f"{query!r} wants too much to say anything"


def test_recall_and_no_false_hits() -> None:
    found = found_by_index()
    misses = [
        (query, post_id) for query in QUERIES for post_id in sorted(QUERIES[query] - found[query])
    ]
    false_hits = [
        (query, post_id) for query in QUERIES for post_id in sorted(found[query] - QUERIES[query])
    ]
    wanted = sum(len(posts) for posts in QUERIES.values())
    recall = (wanted - len(misses)) / wanted
    report = [
        f"recall {recall:.3f} ({wanted - len(misses)}/{wanted}), false hits {len(false_hits)}"
    ]
    for title, pairs in (
        ("MISSED (wanted, not found)", misses),
        ("FALSE HITS (found, not wanted)", false_hits),
    ):
        if pairs:
            report.append(f"--- {title}:")
            report.extend(
                f"  {query!r} -> {post_id}: {POSTS[post_id]!r}" for query, post_id in pairs
            )
    message = "\n".join(report)
    assert recall >= MIN_RECALL, message
    assert not false_hits, message


@pytest.mark.parametrize("query", list(QUERIES))
def test_index_agrees_with_each_query_alone(query: str) -> None:
    # The corpus test reads the index; each query on its own must answer the same.
    matcher = QueryMatcher(query)
    alone = {post_id for post_id, text in POSTS.items() if matcher.spans(text) is not None}
    assert alone == found_by_index()[query]
