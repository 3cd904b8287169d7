"""/search: every stored post that matches a query, newest first, five a page with ◀ ▶.

All stored history is searched: the full-text index narrows it to candidates (the query's
expanded forms, `matching.candidates`), and the matcher confirms each candidate on the search
threads. Candidates are walked newest first by (date, id) keys, so a page never shifts when
posts arrive, and a search remembers what it found for its buttons. A query the index cannot
narrow (a /regex/ in an OR) is looked for in the newest SEARCH_DEPTH posts only.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import sqlite3
import sys
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder
from pydantic import Field

from bot.config import Settings
from bot.delivery.chats import MOMENT_PATTERN, chat_zone, zone_label
from bot.delivery.render import highlight, safe_link, shorten
from bot.domain import Span, StoredPost, Subscriber
from bot.i18n import Texts
from bot.matching import QueryError, QueryMatcher, parse_query
from bot.matching.candidates import fts_filter
from bot.storage import Storage
from handlers.texts import code, escaped, example, query_invalid
from handlers.turns import ChatTurns

log = logging.getLogger(__name__)

SEARCH_DEPTH = 5_000  # a query the index cannot narrow: the newest posts looked through
PAGE_SIZE = 5
SNIPPET = 240
SEARCH_WORKERS = 2  # searches of different chats at once
SEARCH_TIME_LIMIT = 5.0  # seconds one search (or one page of it) may take, whatever it costs
# Candidates are confirmed in batches growing from the first to the largest: a common query
# fills its page from the first batch, a rare one is not fetched 50 at a time.
FIRST_BATCH = 50
MAX_BATCH = 500
# A query whose candidates are this few is confirmed whole at once: its count is exact.
EXACT_COUNT = 1_000
# Otherwise this many are confirmed before the share that matches is taken as the estimate.
SAMPLE = 100
# Above this many candidates the date index is walked instead of sorting the candidates
# (see `Storage.candidate_posts`).
SORTED_MAX = 5_000
REMEMBERED = 256  # searches kept for their buttons, all chats together ...
PER_CHAT = 3  # ... and at most this many of one chat
MAX_PAGE = 100_000

PostKey = tuple[datetime, int]
Found = list[tuple[StoredPost, list[Span]]]


# --- the search itself -------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Hunt:
    """One search in progress: what it looks for, and what it has found so far.

    `matched` holds the ids of the confirmed posts, newest first; `cursor` is the key of the
    last candidate looked at, where the walk goes on. `candidates` is how many posts the
    filter admits (at most SEARCH_DEPTH without a filter), None until counted. No matcher is
    kept: one is built for each step (in well under a millisecond: a term's forms are cached),
    so a remembered search holds no tokenizer cache.
    """

    query: str
    fts: str | None  # the full-text filter; None: every post is a candidate
    since: datetime | None = None
    candidates: int | None = None
    matched: list[int] = field(default_factory=list)
    looked: int = 0
    cursor: PostKey | None = None
    exhausted: bool = False

    @property
    def bounded(self) -> bool:
        """Whether only the newest SEARCH_DEPTH posts are looked through (no filter)."""
        return self.fts is None and self.since is None

    def estimate(self) -> int:
        """How many posts match: exact once every candidate was looked at, else the share
        seen so far applied to the candidates left."""
        found = len(self.matched)
        if self.exhausted or not self.looked or self.candidates is None:
            return found
        left = max(0, self.candidates - self.looked)
        return found + round(left * found / self.looked)


def _confirm(query: str, posts: list[StoredPost], deadline: float) -> tuple[list[int], int]:
    """The ids of the posts that match, and how many were looked at before the deadline
    (`time.monotonic()`). CPU work, run on a search thread."""
    matcher = QueryMatcher(query)
    found: list[int] = []
    for looked, post in enumerate(posts):
        if time.monotonic() > deadline:
            return found, looked
        if matcher.matches(post.post.text):
            found.append(post.id)
    return found, len(posts)


def _spans(query: str, posts: list[StoredPost]) -> Found:
    """Posts with the words to bold (none if a post was edited and no longer matches)."""
    matcher = QueryMatcher(query)
    return [(post, matcher.spans(post.post.text) or []) for post in posts]


def _prepare(query: str, since: datetime | None) -> Hunt:
    """Parse and expand a query (QueryError if malformed). CPU work: a term's forms are
    looked up in the dictionaries."""
    parsed = parse_query(query)
    QueryMatcher(query)  # the terms' forms, expanded once here (and cached)
    return Hunt(parsed.text, fts_filter(parsed), since)


class Searches(ChatTurns):
    """Where searches run and are remembered: worker threads of their own (not the default
    pool, where the HTTP client resolves host names), at most one search at a time per chat
    (`turn`), and the latest searches of each chat for their ◀ ▶ buttons (bounded; older
    ones expire).
    """

    def __init__(self, workers: int = SEARCH_WORKERS, *, remembered: int = REMEMBERED) -> None:
        super().__init__()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="search")
        self._remembered: OrderedDict[str, tuple[int, Hunt]] = OrderedDict()
        self._capacity = remembered

    async def prepare(self, query: str, since: datetime | None = None) -> Hunt:
        """A search for `query` (QueryError if malformed), over posts dated since `since`."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, _prepare, query, since)

    async def advance(self, db: Storage, hunt: Hunt, want: int, *, sample: int = 0) -> bool:
        """Look through candidates until `want` matches are known and `sample` candidates
        were looked at, or there are no more. False if SEARCH_TIME_LIMIT ran out first.

        Candidates come from the database a batch at a time and are matched on a search
        thread, so a slow query never holds the event loop.
        """
        deadline = time.monotonic() + SEARCH_TIME_LIMIT
        await self.count(db, hunt)
        loop = asyncio.get_running_loop()
        batch = FIRST_BATCH
        while not hunt.exhausted and (len(hunt.matched) < want or hunt.looked < sample):
            if time.monotonic() > deadline:
                return False
            # A sample still to take is fetched at once, not in growing batches.
            batch = min(max(batch, sample - hunt.looked), MAX_BATCH)
            limit = min(batch, SEARCH_DEPTH - hunt.looked) if hunt.bounded else batch
            posts = await self._candidates(db, hunt, limit)
            found, checked = await loop.run_in_executor(
                self._pool, _confirm, hunt.query, posts, deadline
            )
            hunt.matched += found
            hunt.looked += checked
            if checked:
                last = posts[checked - 1]
                hunt.cursor = (last.post.date, last.id)
            if checked < len(posts):
                return False
            if (
                len(posts) < limit
                or (hunt.candidates is not None and hunt.looked >= hunt.candidates)
                or (hunt.bounded and hunt.looked >= SEARCH_DEPTH)
            ):
                hunt.exhausted = True
            batch = min(batch * 2, MAX_BATCH)
        return True

    async def count(self, db: Storage, hunt: Hunt) -> None:
        """How many posts the search's filter admits (`hunt.candidates`), once."""
        if hunt.candidates is not None or hunt.since is not None:
            return
        if hunt.fts is not None:
            try:
                hunt.candidates = await db.count_candidates(hunt.fts)
                return
            except sqlite3.OperationalError as exc:
                if "fts5" not in str(exc):
                    raise
                # The filter is built to be valid whatever the query; if it is not, a bug:
                # the bounded scan still answers.
                log.exception("full-text filter of %r refused; scanning instead", hunt.query)
                hunt.fts = None
        hunt.candidates = min(await db.count_posts(), SEARCH_DEPTH)

    async def _candidates(self, db: Storage, hunt: Hunt, limit: int) -> list[StoredPost]:
        dense = hunt.since is not None or (hunt.candidates or 0) > SORTED_MAX
        try:
            return await db.candidate_posts(
                hunt.fts, limit, before=hunt.cursor, since=hunt.since, dense=dense
            )
        except sqlite3.OperationalError as exc:
            if hunt.fts is None or "fts5" not in str(exc):
                raise
            log.exception("full-text filter of %r refused; scanning instead", hunt.query)
            hunt.fts = None
            return await db.candidate_posts(None, limit, before=hunt.cursor, since=hunt.since)

    async def first_page(self, db: Storage, hunt: Hunt) -> tuple[Found, bool]:
        """The first page of a new search, and whether it was found in time. Its candidates
        are counted, and before the page is shown all of them are looked at when few (an
        exact count), else a sample (an estimate)."""
        await self.count(db, hunt)
        candidates = hunt.candidates or 0
        sample = candidates if candidates <= EXACT_COUNT else SAMPLE
        finished = await self.advance(db, hunt, PAGE_SIZE + 1, sample=sample)
        return await self.posts(db, hunt, 0, PAGE_SIZE), finished

    async def posts(self, db: Storage, hunt: Hunt, first: int, count: int) -> Found:
        """`count` of the matches from the `first` (0-based), with the words to bold."""
        posts = await db.posts_by_ids(hunt.matched[first : first + count])
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, _spans, hunt.query, posts)

    def remember(self, chat_id: int, hunt: Hunt) -> str:
        """Keep a search for its buttons; returns its short id (callback data is 64 bytes,
        too short for a query)."""
        key = secrets.token_urlsafe(6)
        self._remembered[key] = (chat_id, hunt)
        mine = [k for k, (chat, _) in self._remembered.items() if chat == chat_id]
        for old in mine[:-PER_CHAT]:
            del self._remembered[old]
        while len(self._remembered) > self._capacity:
            self._remembered.popitem(last=False)
        return key

    def recall(self, chat_id: int, key: str) -> Hunt | None:
        """The search a button names, if this chat's and still remembered."""
        entry = self._remembered.get(key)
        if entry is None or entry[0] != chat_id:
            return None
        self._remembered.move_to_end(key)
        return entry[1]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


async def recent_matches(
    db: Storage, searches: Searches, query: str, since: datetime, *, newest: int = 2
) -> tuple[int, Found, bool]:
    """How many stored posts dated since `since` match `query` (QueryError if malformed), the
    `newest` of them with the words to bold, newest first, and whether every post of the
    period was looked at within SEARCH_TIME_LIMIT (if not, the count is a lower bound)."""
    hunt = await searches.prepare(query, since)
    finished = await searches.advance(db, hunt, sys.maxsize)
    found = await searches.posts(db, hunt, 0, newest)
    return len(hunt.matched), found, finished and hunt.exhausted


# --- the reply ---------------------------------------------------------------------------


class SearchPage(CallbackData, prefix="sr"):
    """◀ ▶ of a search's results: which remembered search, and the page to show."""

    key: str = Field(min_length=1, max_length=16)
    page: int = Field(ge=1, le=MAX_PAGE)


def _snippet(post: StoredPost, spans: list[Span]) -> str:
    """A window of the post around its first match, escaped, matched words in bold."""
    text = post.post.text
    first = spans[0].start if spans else 0
    start = max(0, first - SNIPPET // 3)
    if start:
        start = text.find(" ", start) + 1 or start  # begin on a word
    end = min(len(text), start + SNIPPET)
    inside = [Span(s.start - start, s.end - start) for s in spans if start <= s.start < end]
    body = highlight(" ".join(text[start:end].split("\n")), inside)
    return ("…" if start else "") + body + ("…" if end < len(text) else "")


def posted_at(t: Texts, moment: datetime, zone: tzinfo, now: datetime) -> str:
    """When a post was published, as the chat reads it: `28 Nov 14:05 MSK`, with the year
    when it is not this year's (search reaches far back)."""
    local = moment.astimezone(zone)
    same_year = local.year == now.astimezone(zone).year
    pattern = MOMENT_PATTERN if same_year else "d MMM y HH:mm"
    return f"{t.date(local, pattern)} {zone_label(local)}"


def _rounded(count: int) -> int:
    """An estimate to two significant digits (1,237 → 1,200): no false precision."""
    if count < 100:
        return count
    scale = int(10 ** (len(str(count)) - 2))
    return round(count / scale) * scale


def has_next(hunt: Hunt, page: int) -> bool:
    return len(hunt.matched) > page * PAGE_SIZE or not hunt.exhausted


def render_page(
    t: Texts, hunt: Hunt, page: int, found: Found, zone: tzinfo, *, finished: bool
) -> str:
    """One page of results: how many match (exact, or an estimate), the page, then each post
    (number, source linking to the post, time, snippet), then what limited the search."""
    query = code(shorten(hunt.query, 200))
    count = hunt.estimate()
    pages = max(math.ceil(count / PAGE_SIZE), page + has_next(hunt, page))
    if hunt.exhausted:
        title = t("search-found", count=count, query=query)
        where = t("search-page", page=page, pages=pages)
    else:
        title = t("search-found-about", count=_rounded(count), query=query)
        where = t("search-page-about", page=page, pages=pages)
    blocks = [f"{title} {where}" if pages > 1 else title]
    now = datetime.now(zone)
    for number, (post, spans) in enumerate(found, start=(page - 1) * PAGE_SIZE + 1):
        name = escaped(shorten(post.post.channel_title or post.post.channel, 100))
        link = safe_link(post.post.url)
        source = f'<a href="{link}">{name}</a>' if link else name
        when = posted_at(t, post.post.date, zone, now)
        blocks.append(f"<b>{number}.</b> {source} · {when}\n{_snippet(post, spans)}")
    if hunt.bounded:
        blocks.append(t("search-scan-note", looked=hunt.candidates or hunt.looked))
    if not finished:
        blocks.append(t("search-slow-note", looked=hunt.looked))
    return "\n\n".join(blocks)


def page_buttons(key: str, page: int, more: bool) -> InlineKeyboardMarkup | None:
    """◀ to the page before (not on the first), ▶ to the next (when there may be one)."""
    builder = InlineKeyboardBuilder()
    if page > 1:
        builder.button(text="◀", callback_data=SearchPage(key=key, page=page - 1))
    if more:
        builder.button(text="▶", callback_data=SearchPage(key=key, page=page + 1))
    return builder.as_markup() if page > 1 or more else None


def _none_found(t: Texts, hunt: Hunt, finished: bool) -> str:
    query = code(shorten(hunt.query, 600))
    if not finished:
        return t("search-none-slow", query=query, looked=hunt.looked)
    if hunt.bounded:
        return t("search-none-finished", query=query, looked=hunt.looked)
    return t("search-none", query=query)


# --- handlers ----------------------------------------------------------------------------


async def cmd_search(
    message: Message,
    command: CommandObject,
    db: Storage,
    searches: Searches,
    t: Texts,
    settings: Settings,
    subscriber: Subscriber | None,
) -> None:
    text = (command.args or "").strip()
    if not text:
        await message.answer(t("search-usage", example=example(t, "search")))
        return
    with searches.turn(message.chat.id) as allowed:
        if not allowed:
            await message.answer(t("search-busy"))
            return
        try:
            hunt = await searches.prepare(text)
        except QueryError as exc:
            await message.answer(query_invalid(t, exc, "search"))
            return
        found, finished = await searches.first_page(db, hunt)
    if not found:
        await message.answer(_none_found(t, hunt, finished))
        return
    key = searches.remember(message.chat.id, hunt)
    zone = chat_zone(subscriber, settings.tz)
    await message.answer(
        render_page(t, hunt, 1, found, zone, finished=finished),
        reply_markup=page_buttons(key, 1, has_next(hunt, 1)),
    )


async def cb_page(
    callback: CallbackQuery,
    callback_data: SearchPage,
    db: Storage,
    searches: Searches,
    t: Texts,
    settings: Settings,
    subscriber: Subscriber | None,
) -> None:
    """◀ or ▶: the page shown in place; a search no longer remembered (or another chat's, or
    a page it never offered) gets a toast."""
    message = callback.message
    page = callback_data.page
    hunt = None
    if isinstance(message, Message):
        hunt = searches.recall(message.chat.id, callback_data.key)
    if not isinstance(message, Message) or hunt is None:
        await callback.answer(t("search-expired"))
        return
    if page > len(hunt.matched) // PAGE_SIZE + 1:
        await callback.answer(t("search-expired"))
        return
    with searches.turn(message.chat.id) as allowed:
        if not allowed:
            await callback.answer(t("search-busy"))
            return
        finished = await searches.advance(db, hunt, page * PAGE_SIZE + 1)
        found = await searches.posts(db, hunt, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    if not found:
        await callback.answer(t("search-expired"))
        return
    zone = chat_zone(subscriber, settings.tz)
    try:
        await message.edit_text(
            render_page(t, hunt, page, found, zone, finished=finished),
            reply_markup=page_buttons(callback_data.key, page, has_next(hunt, page)),
        )
    except TelegramBadRequest as exc:
        if "message is not modified" not in str(exc):
            log.warning("search page %d not shown: %s", page, exc)
            await callback.answer(t("search-expired"))
            return
    await callback.answer()


async def cb_malformed(callback: CallbackQuery, t: Texts) -> None:
    """Callback data that claims to be a search page but does not parse (forged)."""
    await callback.answer(t("search-expired"))


def build_router() -> Router:
    router = Router(name="search")
    router.message.register(cmd_search, Command("search"))
    router.callback_query.register(cb_page, SearchPage.filter())
    prefix = SearchPage.__prefix__ + SearchPage.__separator__
    router.callback_query.register(cb_malformed, F.data.startswith(prefix))
    return router
