"""/start and /help."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Chat, Message, User

from bot.i18n import Texts
from bot.ingest import Matcher
from bot.storage import Storage
from handlers.texts import escaped


async def register_chat(db: Storage, matcher: Matcher, chat: Chat, user: User | None) -> None:
    """Save the chat as a subscriber (a command, or a button pressed before any command); a
    chat back after removing or blocking the bot is matched again. A group or channel already
    known keeps its language: it speaks its adder's, whoever writes."""
    before = await db.get_subscriber(chat.id)
    name = chat.title or (user.full_name if user is not None else "") or str(chat.id)
    language = user.language_code if user is not None else None
    if before is not None and chat.type != "private":
        language = None
    await db.upsert_subscriber(chat.id, name, kind=chat.type, tg_language=language)
    if before is not None and not before.active:
        for subscription in await db.subscriptions_of(chat.id):
            if not subscription.paused:
                await matcher.add(subscription)


async def register(message: Message, db: Storage, matcher: Matcher) -> None:
    """`register_chat` for the chat a message came from, as its sender."""
    await register_chat(db, matcher, message.chat, message.from_user)


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
