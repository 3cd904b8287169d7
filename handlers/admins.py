"""Who may change a group's or a channel's queries and settings: its administrators.

Telegram is asked (`getChatMember`) and the answer kept for a short while, so a busy group
does not cost a Bot API call per command. An anonymous administrator writes as the group
itself (`sender_chat` is the chat): that is an administrator too.
"""

from __future__ import annotations

import logging
import time

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Message

log = logging.getLogger(__name__)

ADMIN_STATUSES = ("creator", "administrator")
CACHE_SECONDS = 60.0
CACHE_SIZE = 10_000


class AdminCheck:
    """Cached answers to "is this user an administrator of this chat?"."""

    def __init__(self, ttl: float = CACHE_SECONDS) -> None:
        self._ttl = ttl
        self._answers: dict[tuple[int, int], tuple[float, bool]] = {}

    async def is_admin(self, bot: Bot, chat_id: int, user_id: int) -> bool:
        """Whether `user_id` administers `chat_id`; False when Telegram cannot tell us."""
        key = (chat_id, user_id)
        now = time.monotonic()
        cached = self._answers.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            member = await bot.get_chat_member(chat_id, user_id)
        except TelegramAPIError as exc:
            log.info("cannot tell whether %d administers %d: %s", user_id, chat_id, exc)
            return False
        answer = member.status in ADMIN_STATUSES
        if len(self._answers) >= CACHE_SIZE:
            self._answers.clear()
        self._answers[key] = (now, answer)
        return answer

    def forget(self, chat_id: int) -> None:
        """Drop what is known about a chat (the bot was removed from it, or re-added)."""
        for key in [key for key in self._answers if key[0] == chat_id]:
            del self._answers[key]


def is_anonymous_admin(message: Message) -> bool:
    """A message an anonymous administrator sent: it comes from the group itself."""
    return message.sender_chat is not None and message.sender_chat.id == message.chat.id


async def may_manage(message: Message, bot: Bot, admins: AdminCheck) -> bool:
    """Whether the sender may change this chat's queries and settings: anyone in a private
    chat, an administrator (or an anonymous one) in a group."""
    if message.chat.type == "private":
        return True
    if is_anonymous_admin(message):
        return True
    user = message.from_user
    if user is None:
        return False
    return await admins.is_admin(bot, message.chat.id, user.id)
