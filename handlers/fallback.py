"""Anything no other handler took: unknown commands and plain messages get a pointer to /help."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import Message

from bot.i18n import Texts
from handlers.texts import code


async def cmd_unknown(message: Message, t: Texts) -> None:
    command = (message.text or "").split()[0][:64]
    await message.answer(t("unknown-command", command=code(command)))


async def on_other(message: Message, t: Texts) -> None:
    await message.answer(t("commands-only"))


def build_router() -> Router:
    router = Router(name="fallback")
    # Only private chats: in groups, commands meant for other bots are none of our business.
    router.message.register(cmd_unknown, F.chat.type == "private", F.text.startswith("/"))
    router.message.register(on_other, F.chat.type == "private")
    return router
