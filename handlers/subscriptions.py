"""/subscribe, /unsubscribe and /list."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.delivery.render import shorten
from bot.i18n import Texts
from bot.ingest import Matcher
from bot.matching import QueryError, parse_query
from bot.storage import Storage, TooManySubscriptions
from handlers.replies import answer_blocks
from handlers.start import register
from handlers.texts import code, example, query_invalid

MAX_SUBSCRIPTIONS = 100
ECHO_CHARS = 600  # user text repeated in a reply at most (a reply must stay one message)
LISTED_QUERY_CHARS = 300  # a longer query is shown cut in /list (its number still works)


async def cmd_subscribe(
    message: Message, command: CommandObject, db: Storage, matcher: Matcher, t: Texts
) -> None:
    """Save a query after checking it parses; the index is rebuilt so it applies at once."""
    text = (command.args or "").strip()
    if not text:
        await message.answer(t("subscribe-usage", example=example(t, "subscribe")))
        return
    try:
        query = parse_query(text)
    except QueryError as exc:
        await message.answer(query_invalid(t, shorten(str(exc), ECHO_CHARS), "subscribe"))
        return
    await register(message, db, matcher)
    try:
        subscription = await db.add_subscription(
            message.chat.id, query.text, limit=MAX_SUBSCRIPTIONS
        )
    except TooManySubscriptions as exc:
        await message.answer(t("subscribe-too-many", count=exc.count))
        return
    if subscription is None:
        await message.answer(t("subscribe-duplicate", query=code(query.text)))
        return
    await matcher.add(subscription)
    await message.answer(t("subscribe-done", query=code(query.text)))


async def cmd_unsubscribe(
    message: Message, command: CommandObject, db: Storage, matcher: Matcher, t: Texts
) -> None:
    """Remove a query given by its text or by its number in /list."""
    target = (command.args or "").strip()
    subscriptions = await db.subscriptions_of(message.chat.id)
    if not target:
        await message.answer(t("unsubscribe-usage", example=code("/unsubscribe 1")))
        return
    chosen = None
    if target.isascii() and target.isdigit():  # "²".isdigit() is True, int("²") fails
        number = int(target)
        if 1 <= number <= len(subscriptions):
            chosen = subscriptions[number - 1]
    else:
        chosen = next((s for s in subscriptions if s.query == target), None)
    if chosen is None:
        await message.answer(t("unsubscribe-unknown", query=code(shorten(target, ECHO_CHARS))))
        return
    await db.remove_subscription(chosen.id)
    await matcher.remove(chosen.id)
    await message.answer(t("unsubscribe-done", query=code(chosen.query)))


async def cmd_list(message: Message, db: Storage, t: Texts) -> None:
    subscriptions = await db.subscriptions_of(message.chat.id)
    if not subscriptions:
        await message.answer(t("list-empty", example=example(t, "subscribe")))
        return
    lines = [
        f"{n}. {code(shorten(s.query, LISTED_QUERY_CHARS))}"
        for n, s in enumerate(subscriptions, start=1)
    ]
    blocks = [t("list-title"), *lines, "\n" + t("list-footer")]
    await answer_blocks(message, blocks, more=lambda count: t("more-items", count=count))


def build_router() -> Router:
    router = Router(name="subscriptions")
    router.message.register(cmd_subscribe, Command("subscribe"))
    router.message.register(cmd_unsubscribe, Command("unsubscribe"))
    router.message.register(cmd_list, Command("list"))
    return router
