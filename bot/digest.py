"""Daily digests: when each chat is due, what goes in, and how it is written.

When: each chat's next digest time (UTC) is stored with it, so the periodic job is one range
read of an index. A due time not yet worked out (a new chat, changed settings, a restart of
the service, whose DIGEST_TIME or TIMEZONE may have changed) is worked out from the time of
the chat's previous digest: a digest missed while Dozor was down is sent once, late, at the
next start, and none is sent twice. A chat that turned its digest off gets none, but its mark
still moves at each slot: turned on again, its first digest covers a day, not the whole time
it was off. Quiet hours and mutes do not hold digests (the chat chose their time itself).

What: everything that matched since the previous digest (queries in instant-alerts-only mode
left out), grouped by query: the count, then the most relevant stories, each one post with
its matched words in bold and "also in …" for the other posts telling the same story
(`bot.folding`). Long digests are split between items, each message headed with the period's
dates and its number. With the digest comes the chat's 14-day trend chart (`bot.chart`),
drawn when it is sent. Nothing matched: no message, unless the chat asked for quiet days too.

Preparing thousands of digests reads in batches (one query per batch for the posts, one for
the chart's counts, one transaction to queue them) and gives the event loop back every few
milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import html
import json
import logging
import time as timer
from collections import OrderedDict
from collections.abc import (
    AsyncIterator,
    Callable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Protocol

from bot.chart import ChartData, chart_data
from bot.delivery.chats import (
    MOMENT_PATTERN,
    chat_texts,
    chat_zone,
    moment_text,
    parse_clock,
    wall_instants,
    zone_label,
)
from bot.delivery.render import (
    MAX_MESSAGE,
    FlatText,
    also_line,
    excerpt,
    flatten,
    html_length,
    safe_link,
    source_name,
)
from bot.domain import DigestEntry, Span, StoredPost, Subscriber
from bot.folding import Fingerprints, Story, fold
from bot.i18n import Catalog, Texts
from bot.matching import QueryError, QueryMatcher
from bot.matching.index import PostView
from bot.matching.text import Tokenizer
from bot.storage import QueuedDigest, Storage, ZoneShift

log = logging.getLogger(__name__)

DEFAULT_WINDOW = timedelta(hours=24)  # a chat's first digest covers the day before
CHART_DAYS = 14
STORIES_PER_QUERY = 5  # the most relevant stories shown under each query; the rest counted
EXCERPT_CHARS = 180
BATCH = 500  # chats prepared per read and per transaction
SLICE = 0.01  # seconds of preparing before the event loop gets a turn
MEMO_LIMIT = 100_000  # texts and excerpts a job keeps for reuse before starting afresh
MATCHER_LIMIT = 1_000  # queries compiled by a job itself (those the service's index lacks)
FULL_COLLECTION_DEFERRED = 1_000_000  # gen-1 passes before a full one, while a job runs
RELEASE_SLICE = 2_000  # cached objects freed between two turns of the event loop
POSTS_KEPT = 20_000  # posts a job keeps read for the chats of its later batches
FLAT_CHARS = 3_000  # characters of a post flattened once for all its excerpts
VIEW_LIMIT = 2_000  # posts read into words a job keeps (a few kilobytes each)
HEADING_RESERVE = 60  # UTF-16 units kept in each message for its heading


# --- when ------------------------------------------------------------------------------


def _first_instant(day: date, at: time, tz: tzinfo) -> datetime:
    # When the clock shows `at` twice (put back), the first time counts; when it skips it
    # (put forward), the moment of the jump.
    return wall_instants(day, at, tz)[0]


def latest_slot(now: datetime, at: time, tz: tzinfo) -> datetime:
    """The most recent moment, at or before `now`, when the clock in `tz` showed `at`."""
    local_date = now.astimezone(tz).date()
    for offset in range(0, 3):
        slot = _first_instant(local_date - timedelta(days=offset), at, tz)
        if slot <= now:
            return slot
    raise AssertionError(f"{at} never came before {now} in {tz}")  # pragma: no cover


def next_slot(now: datetime, at: time, tz: tzinfo) -> datetime:
    """The first moment after `now` when the clock in `tz` shows `at` (once a day)."""
    local_date = now.astimezone(tz).date()
    for offset in range(-1, 3):
        slot = _first_instant(local_date + timedelta(days=offset), at, tz)
        if slot > now:
            return slot
    raise AssertionError(f"{at} never comes after {now} in {tz}")  # pragma: no cover


def digest_time(subscriber: Subscriber, default: time) -> time:
    """The chat's digest time, or the service's when it chose none."""
    return parse_clock(subscriber.digest_time) or default


def digest_due(subscriber: Subscriber, now: datetime, at: time, tz: tzinfo) -> bool:
    """Whether the subscriber's latest digest slot has passed unmarked; `at` and `tz` are
    the service's defaults, the subscriber's own time and zone win. (A chat with its digest
    off is due too: its mark moves, nothing is sent.)"""
    slot = latest_slot(now, digest_time(subscriber, at), chat_zone(subscriber, tz))
    reference = subscriber.last_digest_at or subscriber.created_at
    return reference < slot


# --- what ------------------------------------------------------------------------------


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


class CompiledQueries(Protocol):
    """Where the digest finds a query's matched words: the service's matcher."""

    def spans_of(self, query: str, view: PostView) -> list[Span] | None: ...


class DigestCache:
    """What one digest job computes once and uses for many chats: each query compiled, each
    post read into words, the matched words and excerpt of a post for some queries, dates
    as a language and zone write them, and each post's near-duplicate fingerprint."""

    def __init__(
        self, index: CompiledQueries | None = None, fingerprints: Fingerprints | None = None
    ) -> None:
        """`index`: the service's compiled queries (its matcher), used where it has the
        query; others are compiled here, a bounded number kept."""
        self.fingerprints = fingerprints or Fingerprints()
        self._index = index
        self._matchers: dict[str, QueryMatcher | None] = {}
        # Oldest first out (an OrderedDict: deleting a plain dict's first key again and
        # again makes finding the next first key slower and slower).
        self._views: OrderedDict[int, PostView] = OrderedDict()
        self._flat: OrderedDict[int, FlatText] = OrderedDict()
        # Keyed by strings, holding strings: the garbage collector never walks these dicts
        # (tuple keys would make it, on every full pass, through every entry).
        self._excerpts: dict[str, str] = {}
        self._dates: dict[str, str] = {}
        self._texts: dict[str, str] = {}
        self._tokenizer = Tokenizer()

    def text(self, t: Texts, key: str, **args: str | int) -> str:
        """`t(key, **args)`, formatted once for the same language and arguments."""
        memo = "\x00".join([t.language, key, *(f"{k}={v}" for k, v in sorted(args.items()))])
        return self.memo(memo, lambda: t(key, **args))

    def memo(self, key: str, make: Callable[[], str]) -> str:
        """A text made once per job for `key`."""
        found = self._texts.get(key)
        if found is None:
            if len(self._texts) >= MEMO_LIMIT:
                self._texts.clear()
            found = self._texts[key] = make()
        return found

    def stores(self) -> list[MutableMapping[Any, Any]]:
        """Everything the cache holds (to be released a slice at a time)."""
        return [
            self._views,
            self._flat,
            self._excerpts,
            self._dates,
            self._texts,
            self._matchers,
            self.fingerprints.entries,
        ]

    def _matcher(self, query: str) -> QueryMatcher | None:
        if query not in self._matchers:
            if len(self._matchers) >= MATCHER_LIMIT:
                self._matchers.clear()
            try:
                self._matchers[query] = QueryMatcher(query)
            except QueryError:  # a query saved under older rules: shown, not bolded
                self._matchers[query] = None
        return self._matchers[query]

    def excerpt(self, post: StoredPost, query: str) -> str:
        """One line of the post with the words `query` matched in bold (HTML)."""
        key = f"{post.id}\x00{query}"
        found = self._excerpts.get(key)
        if found is None:
            text = post.post.text
            view = self._views.get(post.id)
            if view is None:
                if len(self._views) >= VIEW_LIMIT:
                    self._views.popitem(last=False)
                view = self._views[post.id] = PostView(text, self._tokenizer)
            spans = self._index.spans_of(query, view) if self._index else None
            if spans is None:  # a query no subscription has now: compiled here
                matcher = self._matcher(query)
                spans = (matcher.spans_in(view) if matcher else None) or []
            flat = self._flat.get(post.id)
            if flat is None:
                if len(self._flat) >= VIEW_LIMIT:
                    self._flat.popitem(last=False)
                flat = self._flat[post.id] = flatten(text, 0, min(len(text), FLAT_CHARS))
            if len(self._excerpts) >= MEMO_LIMIT:
                self._excerpts.clear()
            found = self._excerpts[key] = excerpt(text, spans, EXCERPT_CHARS, flat)
        return found

    def moment(self, t: Texts, moment: datetime, tz: tzinfo) -> str:
        """`28 Nov 14:05` in the language of `t`, on the clock of `tz`."""
        key = f"{t.language}\x00{tz}\x00{moment.isoformat()}"
        found = self._dates.get(key)
        if found is None:
            if len(self._dates) >= MEMO_LIMIT:
                self._dates.clear()
            found = self._dates[key] = t.date(moment.astimezone(tz), MOMENT_PATTERN)
        return found


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
        line += f"\n   ↪ {also_line(item.lead.post, others, t, cache.text)}"
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
        name = html.escape(_one_line(query), quote=False)
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


def _one_line(text: str, limit: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def digest_heading(t: Texts, since: datetime, until: datetime, tz: tzinfo) -> str:
    """`📰 Digest for 27–28 November`: the local dates of the covered period (from its
    earliest post, when one was published before the period and found in it)."""
    start, end = since.astimezone(tz), until.astimezone(tz)
    if end.time() == time(0) and end > start:  # a period ending at midnight ends the day before
        end -= timedelta(microseconds=1)
    return t("digest-heading", dates=_interval(t, start.date(), end.date()))


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


# --- the chart -------------------------------------------------------------------------


def _offset_minutes(moment: datetime, tz: tzinfo) -> int:
    offset = moment.astimezone(tz).utcoffset()
    return 0 if offset is None else int(offset.total_seconds() // 60)


def zone_shift(tz: tzinfo, start: datetime, end: datetime) -> ZoneShift:
    """The zone's UTC offsets (minutes) over [start, end] for counting posts by local day:
    (offset before, the moment it changed or None, offset after). Clocks change at most
    once in the two weeks a chart covers."""
    before, after = _offset_minutes(start, tz), _offset_minutes(end, tz)
    if before == after:
        return before, None, after
    low, high = start, end
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if _offset_minutes(middle, tz) == before:
            low = middle
        else:
            high = middle
    return before, high.replace(microsecond=0), after


def chart_window(now: datetime, tz: tzinfo) -> tuple[date, datetime, datetime]:
    """The last day shown and the (UTC) bounds of the matches read for a 14-day chart."""
    last_day = now.astimezone(tz).date()
    # A day more than the chart shows: matches are read by when they were found, counted
    # by the day of the post.
    return last_day, now - timedelta(days=CHART_DAYS + 1), now + timedelta(seconds=1)


def chart_payload(data: ChartData, t: Texts, *, caption: str) -> str:
    """What an outbox row carries for a chart (drawn when sent): JSON."""
    return json.dumps(
        {
            "title": _chart_text(t, "chart-title", len(data.days)),
            "caption": caption,
            "days": [day.isoformat() for day in data.days],
            "labels": [_day_label(t, day) for day in data.days],
            "series": [[series.label, list(series.counts)] for series in data.series],
        },
        ensure_ascii=False,
    )


@functools.lru_cache(maxsize=256)
def _chart_text(t: Texts, key: str, days: int = 0) -> str:
    return t(key, days=days)


@functools.lru_cache(maxsize=1024)
def _interval(t: Texts, start: date, end: date) -> str:
    return t.interval(start, end)


@functools.lru_cache(maxsize=1024)
def _day_label(t: Texts, day: date) -> str:
    return t.date(datetime.combine(day, time(12)), "d MMM")


def subscriber_chart(
    counts: Mapping[str, Mapping[date, int]], t: Texts, now: datetime, tz: tzinfo
) -> ChartData:
    last_day, _, _ = chart_window(now, tz)
    return chart_data(counts, last_day, days=CHART_DAYS, other_label=_chart_text(t, "chart-other"))


# --- the job ---------------------------------------------------------------------------


@dataclass
class _Due:
    subscriber: Subscriber
    since: datetime
    next_at: datetime | None


class _Slicer:
    """Gives the event loop a turn whenever preparing has held it for SLICE seconds."""

    def __init__(self, clock: Callable[[], float] = timer.perf_counter) -> None:
        self._clock = clock
        self._since = clock()

    async def __call__(self) -> None:
        if self._clock() - self._since >= SLICE:
            await asyncio.sleep(0)
            self._since = self._clock()


async def queue_digests(
    storage: Storage,
    now: datetime,
    at: time,
    tz: tzinfo,
    *,
    force: bool = False,
    chat_id: int | None = None,
    catalog: Catalog | None = None,
    index: CompiledQueries | None = None,
    cache: DigestCache | None = None,
) -> int:
    """Queue the digest of every chat that is due (every chat with something to report,
    with `force`; only `chat_id`, when given); returns how many digests were queued.

    `at` and `tz` are the service's digest time and zone, for chats that chose none;
    `index` the service's compiled queries (its matcher), which find the words to bold. The
    service passes as `now` a moment no write still in progress was stamped before
    (`Storage.write_barrier`), so no match falls between two digests.
    """
    job = _Job(storage, now, tz, catalog or Catalog(), cache or DigestCache(index))
    with young_collections_only():
        try:
            return await _queue(job, storage, now, at, tz, force=force, chat_id=chat_id)
        finally:
            # Freed a slice at a time: dropped at once, tens of thousands of cached objects
            # held the event loop for ~50 ms.
            await _release([*job.cache.stores(), job.posts])


async def _release(stores: list[MutableMapping[Any, Any]]) -> None:
    for store in stores:
        while store:
            for _ in range(min(RELEASE_SLICE, len(store))):
                store.popitem()
            await asyncio.sleep(0)


@contextlib.contextmanager
def young_collections_only() -> Iterator[None]:
    """No full garbage collection while a job runs: each walks every object the job holds
    (its caches of words and posts), tens of milliseconds at a time, dozens of times in a
    job for 10,000 chats. The job's objects are freed by reference counting when it ends;
    the young generations are still collected meanwhile."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_DEFERRED)
    try:
        yield
    finally:
        gc.set_threshold(young, middle, old)


async def _queue(
    job: _Job,
    storage: Storage,
    now: datetime,
    at: time,
    tz: tzinfo,
    *,
    force: bool,
    chat_id: int | None,
) -> int:
    queued = 0
    if force:
        if chat_id is None:
            chosen = await storage.active_subscribers()
        else:
            found = await storage.get_subscriber(chat_id)
            chosen = [found] if found is not None and found.active else []
        for start in range(0, len(chosen), BATCH):
            forced = [
                _Due(s, s.last_digest_at or now - DEFAULT_WINDOW, None)
                for s in chosen[start : start + BATCH]
            ]
            queued += await job.prepare(forced)
        return queued
    # Pipelined: the next batch's posts are read (SQLite works on its own thread) while this
    # batch's digests are written.
    pages = _due_pages(storage, now, at, tz)
    current = await anext(pages, None)
    reading = asyncio.create_task(job.read(current)) if current is not None else None
    storing: asyncio.Task[None] | None = None
    while current is not None and reading is not None:
        batch_found = await reading
        following = await anext(pages, None)
        reading = asyncio.create_task(job.read(following)) if following is not None else None
        # The batch is stored while the next one is written (one store at a time).
        digests, count = await job.render(current, batch_found)
        if storing is not None:
            await storing
        storing = asyncio.create_task(storage.queue_digests(digests))
        queued += count
        current = following
    if storing is not None:
        await storing
    return queued


async def _due_pages(
    storage: Storage, now: datetime, at: time, tz: tzinfo
) -> AsyncIterator[list[_Due]]:
    """The chats due now, a batch at a time (keyset pages of the due-time index); those
    whose due time was not known and turn out not to be due are scheduled on the way."""
    after: tuple[datetime | None, int] | None = None
    while True:
        batch = await storage.due_for_digest(now, BATCH, after=after)
        if not batch:
            return
        after = (batch[-1].next_digest_at, batch[-1].chat_id)
        due: list[_Due] = []
        later: list[tuple[int, datetime]] = []
        for subscriber in batch:
            zone = chat_zone(subscriber, tz)
            upcoming = next_slot(now, digest_time(subscriber, at), zone)
            if subscriber.next_digest_at is None and not digest_due(subscriber, now, at, tz):
                later.append((subscriber.chat_id, upcoming))
                continue
            since = subscriber.last_digest_at or now - DEFAULT_WINDOW
            due.append(_Due(subscriber, since, upcoming))
        await storage.schedule_digests(later)
        if due:
            yield due


@dataclass(frozen=True, slots=True)
class _Found:
    """What one batch's digests are written from."""

    entries: dict[int, list[DigestEntry]]
    counts: dict[int, dict[str, dict[date, int]]]
    order: dict[int, list[str]]


@dataclass
class _Job:
    """One run of the digest job: what it shares between its batches."""

    storage: Storage
    now: datetime
    tz: tzinfo
    catalog: Catalog
    cache: DigestCache
    slicer: _Slicer = field(default_factory=lambda: _Slicer())
    shifts: dict[str, ZoneShift] = field(default_factory=dict)
    posts: dict[int, StoredPost] = field(default_factory=dict)  # read once for every chat

    def _shift(self, zone: tzinfo) -> ZoneShift:
        key = str(zone)
        if key not in self.shifts:
            _, read_from, read_to = chart_window(self.now, zone)
            self.shifts[key] = zone_shift(zone, read_from, read_to)
        return self.shifts[key]

    async def prepare(self, due: Sequence[_Due]) -> int:
        """Write and queue the digests of one batch of chats; returns how many."""
        return await self.write(due, await self.read(due))

    async def read(self, due: Sequence[_Due]) -> _Found:
        """Everything a batch's digests are made of, in three reads."""
        storage, now = self.storage, self.now
        enabled = [d for d in due if d.subscriber.digest_enabled]
        if len(self.posts) > POSTS_KEPT:
            self.posts.clear()
        entries = await storage.digest_entries_of(
            {d.subscriber.chat_id: d.since for d in enabled}, now, known=self.posts
        )
        charted = {
            d.subscriber.chat_id: self._shift(chat_zone(d.subscriber, self.tz))
            for d in enabled
            if d.subscriber.digest_chart
            and (d.subscriber.chat_id in entries or d.subscriber.digest_quiet_days)
        }
        _, read_from, read_to = chart_window(now, self.tz)
        counts = await storage.mention_counts(charted, read_from, read_to, digest_queries=True)
        order = await storage.query_order(list(entries))
        return _Found(entries, counts, order)

    async def write(self, due: Sequence[_Due], found: _Found) -> int:
        """Write the batch's digests and queue them; returns how many were queued."""
        digests, count = await self.render(due, found)
        await self.storage.queue_digests(digests)
        return count

    async def render(self, due: Sequence[_Due], found: _Found) -> tuple[list[QueuedDigest], int]:
        """The batch's digests (and marks to move), and how many have messages."""
        forced = bool(due) and due[0].next_at is None
        digests: list[QueuedDigest] = []
        queued = 0
        for item in due:
            await self.slicer()
            chat = item.subscriber.chat_id
            digest = self._digest(item, found.entries.get(chat, []), found.order, found.counts)
            if forced and not digest.parts:
                continue  # `digest --now` with nothing to say: the chat's mark stays
            digests.append(digest)
            queued += bool(digest.parts)
        return digests, queued

    def _digest(
        self,
        item: _Due,
        found: list[DigestEntry],
        order: Mapping[int, list[str]],
        counts: Mapping[int, Mapping[str, Mapping[date, int]]],
    ) -> QueuedDigest:
        subscriber, now = item.subscriber, self.now
        chat = subscriber.chat_id
        if not subscriber.digest_enabled or not (found or subscriber.digest_quiet_days):
            return QueuedDigest(chat, (), now, None, item.next_at)  # the mark moves
        t = chat_texts(self.catalog, subscriber)
        zone = chat_zone(subscriber, self.tz)
        if found:
            parts = render_digest(
                found, item.since, now, t, zone, queries=order.get(chat), cache=self.cache
            )
            log.info("digest for chat %d: %d post(s)", chat, len(found))
        else:
            parts = [quiet_digest(t, item.since, now, zone)]
        chart = None
        if subscriber.digest_chart:
            data = subscriber_chart(counts.get(chat, {}), t, now, zone)
            if data.series:
                dates = _interval(t, data.days[0], data.days[-1])
                caption = self.cache.text(t, "chart-caption", dates=dates)
                chart = chart_payload(data, t, caption=caption)
        return QueuedDigest(chat, tuple(parts), now, chart, item.next_at)
