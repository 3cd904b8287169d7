"""A digest's messages: stories folded from near-duplicate posts, grouped by query with
counts, the most relevant first with the query's words in bold, split between items into
messages within Telegram's limit, each headed with the period's dates and its number.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from bot.delivery.chats import MOMENT_PATTERN, moment_text, zone_label
from bot.delivery.render import (
    MAX_MESSAGE,
    also_line,
    html_length,
    safe_link,
    shorten,
    source_name,
)
from bot.digest.cache import DigestCache
from bot.domain import DigestEntry
from bot.folding import Story, fold
from bot.i18n import Texts

STORIES_PER_QUERY = 5  # the most relevant stories shown under each query; the rest counted
QUERY_CHARS = 100  # of a query in its heading, whitespace folded
HEADING_RESERVE = 60  # UTF-16 units kept in each message for its heading


@dataclass(frozen=True, slots=True)
class StoryItem:
    """One story of a digest: its lead post, the other posts telling it, and every query
    any of them matched."""

    lead: DigestEntry
    others: tuple[DigestEntry, ...]
    queries: frozenset[str]

    def relevance(self) -> tuple[int, int, int, datetime]:
        """Carried by more sources, matching more queries, read more, newer: first."""
        post = self.lead.post.post
        return (len(self.others), len(self.queries), post.views or 0, post.date)

    def posts_matching(self, query: str) -> int:
        """How many of the story's posts the query matched."""
        return sum(query in entry.queries for entry in (self.lead, *self.others))


def stories(entries: Sequence[DigestEntry], cache: DigestCache | None = None) -> list[StoryItem]:
    """The entries folded into stories (most relevant first), the earliest post leading."""
    folded: list[Story[DigestEntry]] = fold(
        entries,
        key=lambda entry: entry.post.id,
        text=lambda entry: entry.post.post.text,
        when=lambda entry: entry.post.post.date,
        fingerprints=cache.fingerprints if cache else None,
    )
    items = [
        StoryItem(
            story.lead,
            story.others,
            frozenset(q for entry in (story.lead, *story.others) for q in entry.queries),
        )
        for story in folded
    ]
    items.sort(key=StoryItem.relevance, reverse=True)
    return items


def _item(item: StoryItem, query: str, t: Texts, tz: tzinfo, cache: DigestCache) -> str:
    """One story as a digest line: where and when, the excerpt (the words of the query it is
    listed under in bold), the other sources."""
    post = item.lead.post.post
    head = f"{html.escape(source_name(item.lead.post)[:80], quote=False)} · "
    head += cache.moment(t, post.date, tz)
    link = safe_link(post.url)
    if link:
        head = f'<a href="{link}">{head}</a>'
    line = f"• {head}: {cache.excerpt(item.lead.post, query)}"
    if item.others:
        others = [entry.post for entry in item.others]
        line += f"\n   ↪ {also_line(item.lead.post, others, functools.partial(cache.text, t))}"
    return line


def digest_blocks(
    items: Sequence[StoryItem], queries: Sequence[str], t: Texts, tz: tzinfo, cache: DigestCache
) -> list[str]:
    """The digest's body as blocks that are never split: per query (in the chat's order),
    its heading with the count travelling with its first story, then the other stories;
    a story is shown under the first query it matched."""
    blocks: list[str] = []
    shown: set[int] = set()
    for query in queries:
        matching = [item for item in items if query in item.queries]
        if not matching:
            continue
        posts = sum(item.posts_matching(query) for item in matching)
        name = html.escape(shorten(" ".join(query.split()), QUERY_CHARS), quote=False)
        heading = cache.text(t, "digest-query", query=name, count=posts)
        fresh = [item for item in matching if item.lead.post.id not in shown]
        top = fresh[:STORIES_PER_QUERY]
        lines = [_item(item, query, t, tz, cache) for item in top]
        shown.update(item.lead.post.id for item in top)
        rest = sum(item.posts_matching(query) for item in fresh[STORIES_PER_QUERY:])
        if not lines:
            lines = [cache.text(t, "digest-shown-above")]
        if rest:
            lines[-1] += "\n" + cache.text(t, "digest-more", count=rest)
        blocks.append(f"<b>{heading}</b>\n{lines[0]}")
        blocks.extend(lines[1:])
    return blocks


def digest_heading(t: Texts, since: datetime, until: datetime, tz: tzinfo) -> str:
    """`📰 Digest for 27–28 November`: the local dates of the covered period (from its
    earliest post, when one was published before the period and found in it)."""
    start, end = since.astimezone(tz), until.astimezone(tz)
    if end.time() == time(0) and end > start:  # a period ending at midnight ends the day before
        end -= timedelta(microseconds=1)
    return t("digest-heading", dates=date_range(t, start.date(), end.date()))


def digest_period(t: Texts, since: datetime, until: datetime, tz: tzinfo) -> str:
    """`19 Nov 08:00 – 20 Nov 08:00 MSK`: the covered period, in the chat's language and
    zone (each end labelled when the clocks changed in between)."""
    start, end = since.astimezone(tz), until.astimezone(tz)
    if zone_label(start) == zone_label(end):
        return f"{t.date(start, MOMENT_PATTERN)} – {moment_text(t, until, tz)}"
    return f"{moment_text(t, since, tz)} – {moment_text(t, until, tz)}"


def split_messages(heading: str, intro: str, blocks: Sequence[str]) -> list[str]:
    """Pack blocks into messages within Telegram's limit, never inside a block; each message
    starts with the heading, numbered `(2/3)` when there are several; `intro` opens the first."""
    budget = MAX_MESSAGE - HEADING_RESERVE - html_length(heading)
    messages: list[list[str]] = [[intro]]
    size = html_length(intro)
    for block in blocks:
        block_size = html_length(block) + 2  # the blank line before it
        if block_size > budget:  # one story longer than a message: cannot happen, but cut
            block = block[: budget // 2] + "…"
            block_size = html_length(block) + 2
        if size + block_size > budget and messages[-1]:
            messages.append([])
            size = 0
        messages[-1].append(block)
        size += block_size
    total = len(messages)
    out = []
    for number, message in enumerate(messages, 1):
        title = heading if total == 1 else f"{heading} ({number}/{total})"
        out.append("\n\n".join([f"<b>{title}</b>", *message]))
    return out


def render_digest(
    entries: Sequence[DigestEntry],
    since: datetime,
    until: datetime,
    t: Texts,
    tz: tzinfo,
    *,
    queries: Sequence[str] | None = None,
    cache: DigestCache | None = None,
) -> list[str]:
    """The digest of the period (since, until] as one or more messages, each within
    Telegram's limit, in the chat's language `t` and zone `tz`; `queries` give the order of
    the groups (the chat's saved order; by default, the order they first appear)."""
    cache = cache or DigestCache()
    items = stories(entries, cache)
    if queries is None:
        queries = list(dict.fromkeys(q for entry in entries for q in entry.queries))
    else:  # queries since removed still matched in the period: shown last
        extra = [q for entry in entries for q in entry.queries if q not in queries]
        queries = [*queries, *dict.fromkeys(extra)]
    # Posts published before the period (found late: a source caught up) widen the dates.
    earliest = min((entry.post.post.date for entry in entries), default=since)
    heading = cache.memo(
        f"heading\x00{t.language}\x00{tz}\x00{min(since, earliest)}\x00{until}",
        lambda: digest_heading(t, min(since, earliest), until, tz),
    )
    period = cache.memo(
        f"period\x00{t.language}\x00{tz}\x00{since}\x00{until}",
        lambda: digest_period(t, since, until, tz),
    )
    intro = cache.text(
        t,
        "digest-intro",
        period=period,
        count=len(entries),
        stories=len(items),
    )
    blocks = digest_blocks(items, queries, t, tz, cache)
    return split_messages(heading, intro, blocks)


def quiet_digest(t: Texts, since: datetime, until: datetime, tz: tzinfo) -> str:
    heading = digest_heading(t, since, until, tz)
    return f"<b>{heading}</b>\n\n" + t("digest-quiet", period=digest_period(t, since, until, tz))


@functools.lru_cache(maxsize=1024)
def date_range(t: Texts, start: date, end: date) -> str:
    return t.interval(start, end)
