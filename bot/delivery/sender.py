"""The sender: every message to Telegram goes through here, paced to Telegram's limits.

First version: pacing by spacing sends (a global interval and a per-chat interval) rather
than reacting to 429s, and a classification of every Bot API failure into what the outbox
should do next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
)
from aiogram.types import LinkPreviewOptions

log = logging.getLogger(__name__)

GLOBAL_RATE = 30.0  # messages per second, all chats together
PRIVATE_INTERVAL = 1.0  # seconds between messages to one private chat
GROUP_INTERVAL = 3.0  # 20 per minute to a group or channel
SEND_TIMEOUT = 30  # seconds for one Bot API call

Status = Literal["sent", "retry", "blocked", "rejected"]


@dataclass(frozen=True, slots=True)
class SendResult:
    """What happened to one message: sent, retry after `delay` s, chat blocked, or rejected."""

    status: Status
    reason: str = ""
    delay: float = 0.0


class Sender(Protocol):
    """Delivers one HTML message to one chat."""

    async def send(self, chat_id: int, html: str) -> SendResult: ...


class Pacer:
    """Spaces sends evenly: no burst above the global rate, none above a chat's rate."""

    def __init__(
        self,
        *,
        rate: float = GLOBAL_RATE,
        private_interval: float = PRIVATE_INTERVAL,
        group_interval: float = GROUP_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = 1.0 / rate
        self._private_interval = private_interval
        self._group_interval = group_interval
        self._clock = clock
        self._next_global = 0.0
        self._next_chat: dict[int, float] = {}
        self._lock = asyncio.Lock()

    def chat_interval(self, chat_id: int) -> float:
        # Private chats have positive ids; groups and channels negative ones.
        return self._private_interval if chat_id > 0 else self._group_interval

    def pause(self, chat_id: int | None, seconds: float) -> None:
        """Hold a chat (or, with None, everything) for `seconds`, as Telegram asked."""
        until = self._clock() + seconds
        if chat_id is None:
            self._next_global = max(self._next_global, until)
        else:
            self._next_chat[chat_id] = max(self._next_chat.get(chat_id, 0.0), until)

    def reserve(self, chat_id: int) -> float:
        """Book the earliest moment both the global and the chat's slot are free."""
        start = max(self._clock(), self._next_global, self._next_chat.get(chat_id, 0.0))
        self._next_global = start + self._interval
        self._next_chat[chat_id] = start + self.chat_interval(chat_id)
        return start

    async def wait_turn(self, chat_id: int) -> None:
        """Sleep until this chat's booked slot comes."""
        async with self._lock:
            start = self.reserve(chat_id)
        delay = start - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)


class TelegramSender:
    """Sends through aiogram and turns its exceptions into SendResults."""

    def __init__(
        self, bot: Bot, pacer: Pacer | None = None, *, timeout: int = SEND_TIMEOUT
    ) -> None:
        self._bot = bot
        self._pacer = pacer or Pacer()
        self._timeout = timeout

    async def send(self, chat_id: int, html: str) -> SendResult:
        await self._pacer.wait_turn(chat_id)
        try:
            await self._bot.send_message(
                chat_id,
                html,
                parse_mode="HTML",
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                request_timeout=self._timeout,
            )
        except TelegramRetryAfter as exc:
            self._pacer.pause(chat_id, exc.retry_after)
            log.warning("chat %d: Telegram asked to wait %ds", chat_id, exc.retry_after)
            return SendResult("retry", exc.message, float(exc.retry_after))
        except TelegramForbiddenError as exc:
            return SendResult("blocked", exc.message)
        except TelegramBadRequest as exc:
            if "chat not found" in exc.message.lower():
                return SendResult("blocked", exc.message)
            return SendResult("rejected", exc.message)
        except (TelegramNetworkError, ClientDecodeError, TelegramAPIError) as exc:
            # Network trouble, 5xx, a proxy's HTML page: transient, the outbox retries.
            return SendResult("retry", f"{type(exc).__name__}: {exc}")
        return SendResult("sent")
