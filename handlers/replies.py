"""Sending replies that may be long: blocks of HTML packed into messages Telegram accepts."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiogram.types import Message

from bot.delivery.fitting import fit_messages


async def answer_blocks(
    message: Message, blocks: Sequence[str], *, more: Callable[[int], str]
) -> None:
    """Reply with `blocks` (each balanced HTML), split into messages by Telegram's length.

    `more(count)` (plain text) ends the last message when `count` blocks did not fit.
    """
    for part in fit_messages(blocks, more=more):
        await message.answer(part)
