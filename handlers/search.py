"""/search: the newest stored posts that match a query, in the same language as /subscribe."""

from __future__ import annotations

import html

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.delivery.render import MAX_MESSAGE, highlight, safe_link, visible_length
from bot.domain import Span, StoredPost
from bot.matching import QueryError, QueryMatcher
from bot.storage import Storage
from handlers.texts import EXAMPLE_QUERY, code

SEARCH_DEPTH = 5_000  # newest posts looked through: bounded work whatever the query
SEARCH_PAGE = 250
MAX_RESULTS = 10
SNIPPET = 240


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


def render_results(query: str, found: list[tuple[StoredPost, list[Span]]]) -> str:
    """The reply: one block per post (channel, date, link, snippet), within 4096 characters."""
    title = f"🔎 {len(found)} newest post(s) matching {code(query)}"
    blocks = [title]
    size = visible_length(query) + 40
    for post, spans in found:
        when = post.post.date.strftime("%Y-%m-%d %H:%M")
        label = html.escape(f"{post.post.channel} · {when}", quote=False)
        link = safe_link(post.post.url)
        head = f'<a href="{link}">{label}</a>' if link else label
        block = f"• {head}\n{_snippet(post, spans)}"
        block_size = visible_length(post.post.channel) + SNIPPET + 40
        if size + block_size > MAX_MESSAGE:
            break
        blocks.append(block)
        size += block_size
    return "\n\n".join(blocks)


async def cmd_search(message: Message, command: CommandObject, db: Storage) -> None:
    text = (command.args or "").strip()
    if not text:
        await message.answer("What should I look for? e.g. " + code(f"/search {EXAMPLE_QUERY}"))
        return
    try:
        matcher = QueryMatcher(text)
    except QueryError as exc:
        await message.answer(
            f"⚠️ I can't use that query: {html.escape(str(exc), quote=False)}.\n"
            f"A correct example: {code(f'/search {EXAMPLE_QUERY}')}"
        )
        return
    found: list[tuple[StoredPost, list[Span]]] = []
    # Newest first, a page at a time: a common query stops after the first page.
    for offset in range(0, SEARCH_DEPTH, SEARCH_PAGE):
        page = await db.recent_posts(SEARCH_PAGE, offset)
        for post in page:
            spans = matcher.spans(post.post.text)
            if spans is not None:
                found.append((post, spans))
        if len(found) >= MAX_RESULTS or len(page) < SEARCH_PAGE:
            break
    found = found[:MAX_RESULTS]
    if not found:
        await message.answer(
            f"No stored post matches {code(text)} (I looked through the newest {SEARCH_DEPTH:,})."
        )
        return
    await message.answer(render_results(text, found))


def build_router() -> Router:
    router = Router(name="search")
    router.message.register(cmd_search, Command("search"))
    return router
