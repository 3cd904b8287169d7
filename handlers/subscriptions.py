"""/subscribe, /unsubscribe and /list."""

from __future__ import annotations

import html

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.delivery.render import shorten
from bot.ingest import Matcher
from bot.matching import QueryError, parse_query
from bot.storage import Storage, TooManySubscriptions
from handlers.replies import answer_blocks
from handlers.start import register
from handlers.texts import EXAMPLE_QUERY, code

MAX_SUBSCRIPTIONS = 100
ECHO_CHARS = 600  # user text repeated in a reply at most (a reply must stay one message)
LISTED_QUERY_CHARS = 300  # a longer query is shown cut in /list (its number still works)


def _escaped(text: str) -> str:
    return html.escape(shorten(text, ECHO_CHARS), quote=False)


async def cmd_subscribe(
    message: Message, command: CommandObject, db: Storage, matcher: Matcher
) -> None:
    """Save a query after checking it parses; the index is rebuilt so it applies at once."""
    text = (command.args or "").strip()
    if not text:
        await message.answer(
            "Tell me what to watch for, e.g.\n" + code(f"/subscribe {EXAMPLE_QUERY}")
        )
        return
    try:
        query = parse_query(text)
    except QueryError as exc:
        await message.answer(
            f"⚠️ I can't use that query: {_escaped(str(exc))}.\n"
            f"A correct example: {code(f'/subscribe {EXAMPLE_QUERY}')}"
        )
        return
    await register(message, db, matcher)
    try:
        subscription = await db.add_subscription(
            message.chat.id, query.text, limit=MAX_SUBSCRIPTIONS
        )
    except TooManySubscriptions as exc:
        await message.answer(
            f"You already have {exc.count} queries, the most one chat can keep. "
            "Remove one with /unsubscribe first."
        )
        return
    if subscription is None:
        await message.answer(f"You are already subscribed to {code(query.text)}.")
        return
    await matcher.add(subscription)
    await message.answer(
        f"✅ Subscribed to {code(query.text)}. I'll alert you when a post matches.\n"
        "See all your queries with /list."
    )


async def cmd_unsubscribe(
    message: Message, command: CommandObject, db: Storage, matcher: Matcher
) -> None:
    """Remove a query given by its text or by its number in /list."""
    target = (command.args or "").strip()
    subscriptions = await db.subscriptions_of(message.chat.id)
    if not target:
        await message.answer(
            "Which query? Give its number from /list or its text, e.g. " + code("/unsubscribe 1")
        )
        return
    chosen = None
    if target.isascii() and target.isdigit():  # "²".isdigit() is True, int("²") fails
        number = int(target)
        if 1 <= number <= len(subscriptions):
            chosen = subscriptions[number - 1]
    else:
        chosen = next((s for s in subscriptions if s.query == target), None)
    if chosen is None:
        await message.answer(
            f"You have no query {code(shorten(target, ECHO_CHARS))}. /list shows your queries"
            " with their numbers."
        )
        return
    await db.remove_subscription(chosen.id)
    await matcher.remove(chosen.id)
    await message.answer(f"🗑 Unsubscribed from {code(chosen.query)}.")


async def cmd_list(message: Message, db: Storage) -> None:
    subscriptions = await db.subscriptions_of(message.chat.id)
    if not subscriptions:
        await message.answer(
            "You have no saved queries yet. Try " + code(f"/subscribe {EXAMPLE_QUERY}")
        )
        return
    lines = [
        f"{n}. {code(shorten(s.query, LISTED_QUERY_CHARS))}"
        for n, s in enumerate(subscriptions, start=1)
    ]
    blocks = ["<b>Your queries</b>", *lines, "\nRemove one with /unsubscribe NUMBER."]
    await answer_blocks(message, blocks, more="… and {count} more")


def build_router() -> Router:
    router = Router(name="subscriptions")
    router.message.register(cmd_subscribe, Command("subscribe"))
    router.message.register(cmd_unsubscribe, Command("unsubscribe"))
    router.message.register(cmd_list, Command("list"))
    return router
