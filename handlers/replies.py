"""Sending replies that may be long: blocks of HTML packed into messages Telegram accepts."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import Message

from bot.delivery.fitting import fit_messages


async def answer_blocks(message: Message, blocks: Sequence[str], *, more: str) -> None:
    """Reply with `blocks` (each balanced HTML), split into messages by Telegram's length.

    `more` (plain text with `{count}`) ends the last message when there was too much to send.
    """
    for part in fit_messages(blocks, more=more):
        await message.answer(part)
