"""/start and /help."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot.i18n import Texts
from bot.ingest import Matcher
from bot.storage import Storage
from handlers.texts import escaped


def chat_name(message: Message) -> str:
    """A human name for the chat: a group's title or the user's name."""
    if message.chat.title:
        return message.chat.title
    user = message.from_user
    return user.full_name if user else str(message.chat.id)


async def register(message: Message, db: Storage, matcher: Matcher) -> None:
    """Save the chat as a subscriber; a chat back after blocking the bot is matched again."""
    before = await db.get_subscriber(message.chat.id)
    user = message.from_user
    language = user.language_code if user is not None else None
    if before is not None and message.chat.type != "private":
        language = None  # a group keeps the language of whoever added it, whoever writes
    await db.upsert_subscriber(
        message.chat.id, chat_name(message), kind=message.chat.type, tg_language=language
    )
    if before is not None and not before.active:
        for subscription in await db.subscriptions_of(message.chat.id):
            if not subscription.paused:
                await matcher.add(subscription)


def help_text(t: Texts) -> str:
    return t("help", example=escaped(t("example-query")))


async def cmd_start(message: Message, db: Storage, matcher: Matcher, t: Texts) -> None:
    """Register the chat (or reactivate it after a block) and explain what Dozor does."""
    await register(message, db, matcher)
    await message.answer(t("welcome") + "\n\n" + help_text(t))


async def cmd_help(message: Message, t: Texts) -> None:
    await message.answer(help_text(t))


def build_router() -> Router:
    """A fresh router (routers can be attached to one dispatcher only)."""
    router = Router(name="start")
    router.message.register(cmd_start, CommandStart())
    router.message.register(cmd_help, Command("help"))
    return router
