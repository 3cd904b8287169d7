"""/search: the newest stored posts that match a query, in the same language as /subscribe."""

from __future__ import annotations

import asyncio
import contextlib
import html
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.delivery.render import highlight, safe_link, shorten
from bot.domain import Span, StoredPost
from bot.i18n import Texts
from bot.matching import QueryError, QueryMatcher
from bot.storage import Storage
from handlers.replies import answer_blocks
from handlers.texts import code, example, query_invalid

SEARCH_DEPTH = 5_000  # newest posts looked through: bounded work whatever the query
SEARCH_PAGE = 250
MAX_RESULTS = 10
SNIPPET = 240
Found = list[tuple[StoredPost, list[Span]]]
SEARCH_WORKERS = 2  # searches of different chats at once
SEARCH_TIME_LIMIT = 5.0  # seconds one search may take, whatever the query costs


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


def render_results(t: Texts, query: str, found: Found) -> list[str]:
    """The reply's blocks: a title, then one block per post (channel, date, link, snippet)."""
    blocks = [t("search-title", count=len(found), query=code(shorten(query, 200)))]
    for post, spans in found:
        when = post.post.date.strftime("%Y-%m-%d %H:%M")
        label = html.escape(f"{shorten(post.post.channel, 100)} · {when}", quote=False)
        link = safe_link(post.post.url)
        head = f'<a href="{link}">{label}</a>' if link else label
        blocks.append(f"• {head}\n{_snippet(post, spans)}")
    return blocks


def _matching(
    matcher: QueryMatcher, posts: list[StoredPost], deadline: float
) -> tuple[Found, int]:
    """The posts of a page that match, with their spans, and how many were looked at before
    the deadline (`time.monotonic()`). CPU work, run on a worker thread."""
    found: Found = []
    for looked, post in enumerate(posts):
        if time.monotonic() > deadline:
            return found, looked
        spans = matcher.spans(post.post.text)
        if spans is not None:
            found.append((post, spans))
    return found, len(posts)


class Searches:
    """Where searches run: worker threads of their own (not the default pool, where the HTTP
    client resolves host names), and at most one search at a time per chat."""

    def __init__(self, workers: int = SEARCH_WORKERS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="search")
        self._running: set[int] = set()

    @contextlib.contextmanager
    def turn(self, chat_id: int) -> Iterator[bool]:
        """True while this chat's search may run; False if another of its searches runs."""
        if chat_id in self._running:
            yield False
            return
        self._running.add(chat_id)
        try:
            yield True
        finally:
            self._running.discard(chat_id)

    async def run(self, db: Storage, matcher: QueryMatcher) -> tuple[Found, int, bool]:
        """The newest matching posts: (found, posts looked through, finished in time).

        Posts are matched a page at a time on a search thread, so a slow query never holds
        the event loop, and a search stops after SEARCH_TIME_LIMIT seconds whatever it costs.
        """
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + SEARCH_TIME_LIMIT
        found: Found = []
        looked = 0
        for offset in range(0, SEARCH_DEPTH, SEARCH_PAGE):
            page = await db.recent_posts(SEARCH_PAGE, offset)
            matched, checked = await loop.run_in_executor(
                self._pool, _matching, matcher, page, deadline
            )
            found += matched
            looked += checked
            if checked < len(page):
                return found[:MAX_RESULTS], looked, False
            # Newest first: a common query stops after the first page.
            if len(found) >= MAX_RESULTS or len(page) < SEARCH_PAGE:
                break
        return found[:MAX_RESULTS], looked, True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


async def cmd_search(
    message: Message, command: CommandObject, db: Storage, searches: Searches, t: Texts
) -> None:
    text = (command.args or "").strip()
    if not text:
        await message.answer(t("search-usage", example=example(t, "search")))
        return
    try:
        matcher = QueryMatcher(text)
    except QueryError as exc:
        await message.answer(query_invalid(t, shorten(str(exc), 600), "search"))
        return
    with searches.turn(message.chat.id) as allowed:
        if not allowed:
            await message.answer(t("search-busy"))
            return
        found, looked, finished = await searches.run(db, matcher)
    if not found:
        key = "search-none-finished" if finished else "search-none-slow"
        await message.answer(t(key, query=code(shorten(text, 600)), looked=looked))
        return
    blocks = render_results(t, text, found)
    if not finished:
        blocks.append(t("search-slow-note", looked=looked))
    await answer_blocks(message, blocks, more=lambda count: t("more-items", count=count))


def build_router() -> Router:
    router = Router(name="search")
    router.message.register(cmd_search, Command("search"))
    return router
