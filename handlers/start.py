"""/start and /help."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot.ingest import Matcher
from bot.storage import Storage
from handlers.texts import HELP


def chat_name(message: Message) -> str:
    """A human name for the chat: a group's title or the user's name."""
    if message.chat.title:
        return message.chat.title
    user = message.from_user
    return user.full_name if user else str(message.chat.id)


async def register(message: Message, db: Storage, matcher: Matcher) -> None:
    """Save the chat as a subscriber; a chat back after blocking the bot is matched again."""
    before = await db.get_subscriber(message.chat.id)
    await db.upsert_subscriber(message.chat.id, chat_name(message))
    if before is not None and not before.active:
        for subscription in await db.subscriptions_of(message.chat.id):
            await matcher.add(subscription)


async def cmd_start(message: Message, db: Storage, matcher: Matcher) -> None:
    """Register the chat (or reactivate it after a block) and explain what Dozor does."""
    await register(message, db, matcher)
    await message.answer("👋 Welcome to Dozor.\n\n" + HELP)


async def cmd_help(message: Message) -> None:
    await message.answer(HELP)


def build_router() -> Router:
    """A fresh router (routers can be attached to one dispatcher only)."""
    router = Router(name="start")
    router.message.register(cmd_start, CommandStart())
    router.message.register(cmd_help, Command("help"))
    return router
