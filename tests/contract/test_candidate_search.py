"""/search's candidate filter on both engines: it admits every post the matcher takes.

The filter is written once (`bot.matching.candidates`, FTS5 syntax) and run by each engine
on its own index — SQLite's FTS5 table, PostgreSQL's tsvector index (`bot/storage/postgres/
search.py`). Whatever an engine admits beyond the matches costs a confirmation; a match it
does not admit is a post /search never shows. So on the same posts each engine must admit a
superset of what the matcher takes, and count what it returns.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest

from bot.domain import Post
from bot.matching import QueryMatcher, parse_query
from bot.matching.candidates import fts_filter
from bot.sources.jsonl import parse_line
from bot.storage import Storage
from bot.storage.postgres.search import (
    FilterSyntaxError,
    _String,
    parse_filter,
    strings_of,
    to_tsquery,
)

START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
# Texts the two indexes cut differently unless care is taken: links, accents, ё, numbers
# with units, apostrophes, hyphens, codes with look-alike letters, decimals, e-mail.
HOSTILE = (
    "Подробнее: t.me/rybar/123 и https://example.com/oreshnik-test",
    "Orešnik: analysts at the Résumé desk compare ranges",
    "Ёлки: на позиции заметили «Орешник», 152мм гаубицы тоже",
    "Об'єкт уражено: «Іскандер-М» (9М723) та 9M729 у Брянській області",
    "Ту-95МС и Tу-160: вылет 3.5 часа; пишите oreshnik@example.org",
    "ИНФ/INF Treaty: the moratorium on intermediate-range deployments",
    "Ракетный комплекс ОРЕШНИК поставлен на боевое дежурство",
)
QUERIES = (
    "Орешник",
    "Oreshnik",
    "Искандер-М",
    "9М729",
    "INF",
    "мораторий OR moratorium",
    '"боевое дежурство"',
    "Ту-95МС",
    "152мм",
    "rybar",
    "Орешник -учения",
    "Орешн*",
    "(Орешник OR Искандер) AND Беларусь",
    "объект",
    "ёлки",
)


def _posts() -> list[Post]:
    sample = resources.files("bot") / "samples" / "posts.jsonl"
    posts = [parse_line(line) for line in sample.read_bytes().splitlines() if line.strip()]
    for number, text in enumerate(HOSTILE):
        posts.append(Post("jsonl", "hostile", str(number), START, text, None))
    return posts


async def _stored(store: Storage) -> dict[int, str]:
    stored: dict[int, str] = {}
    for offset, post in enumerate(_posts()):
        dated = Post(
            post.source,
            post.channel,
            post.post_id,
            START + timedelta(minutes=offset),
            post.text,
            post.url,
        )
        result = await store.save_post(dated, [])
        stored[result.post_id] = dated.text
    return stored


@pytest.mark.parametrize("query", QUERIES)
async def test_every_post_the_matcher_takes_is_a_candidate(store: Storage, query: str) -> None:
    stored = await _stored(store)
    expression = fts_filter(parse_query(query))
    assert expression is not None, "every query here can be narrowed by the index"
    matcher = QueryMatcher(query)
    taken = {post_id for post_id, text in stored.items() if matcher.matches(text)}
    candidates = await store.candidate_posts(expression, limit=1_000)
    admitted = {post.id for post in candidates}
    assert taken <= admitted, f"{query!r}: missed {sorted(taken - admitted)}"
    assert await store.count_candidates(expression) == len(admitted)


async def test_candidates_page_newest_first_by_date_and_id(store: Storage) -> None:
    await _stored(store)
    expression = fts_filter(parse_query("Орешник OR Oreshnik"))
    assert expression is not None
    everything = await store.candidate_posts(expression, limit=1_000)
    keys = [(post.post.date, post.id) for post in everything]
    assert keys == sorted(keys, reverse=True)
    first = await store.candidate_posts(expression, limit=2)
    rest = await store.candidate_posts(
        expression, limit=1_000, before=(first[-1].post.date, first[-1].id)
    )
    assert [post.id for post in first + rest] == [post.id for post in everything]
    recent = await store.candidate_posts(None, limit=1_000, since=START + timedelta(minutes=30))
    assert recent
    assert all(post.post.date >= START + timedelta(minutes=30) for post in recent)


async def test_a_filter_of_no_word_admits_nothing(store: Storage) -> None:
    await _stored(store)
    assert await store.count_candidates('"—"') == 0
    assert await store.candidate_posts('"—"', limit=10) == []


def test_the_filter_becomes_a_tsquery() -> None:
    tree = parse_filter('("орешник" OR "oreshnik"*) AND "об""єкт"')
    assert strings_of(tree) == {"орешник", "oreshnik", 'об"єкт'}
    words = {"орешник": ["орешник"], "oreshnik": ["oreshnik"], 'об"єкт': ["об", "єкт"]}
    assert to_tsquery(tree, words) == "(('орешник' | 'oreshnik':*) & ('об' & 'єкт'))"
    # A string with no word matches nothing: an OR goes on without it, an AND fails.
    assert to_tsquery(tree, {**words, "орешник": []}) == "('oreshnik':* & ('об' & 'єкт'))"
    assert to_tsquery(tree, {**words, 'об"єкт': []}) is None
    assert to_tsquery(_String("it's", prefix=False), {"it's": ["it's"]}) == "'it''s'"


@pytest.mark.parametrize("broken", ['"open', "(", '"a" AND', '"a" "b"', "a", '("a"'])
def test_a_filter_not_written_by_candidates_is_refused(broken: str) -> None:
    with pytest.raises(FilterSyntaxError):
        parse_filter(broken)
