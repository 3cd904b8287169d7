"""The one sender: every message Dozor sends (alerts, digests, command replies, admin notices)
passes one `Pacer`, which keeps within Telegram's limits instead of reacting to 429s.

The pacer sits in the bot's HTTP session as a request middleware, so replies that handlers
send with `message.answer()` are paced with the same clock as the outbox's bulk sends, and go
first: a waiting reply takes the next free slot ahead of any waiting alert. Spacing rather than
a token bucket: a bucket of capacity N lets N messages through in the first instant, which
Telegram counts as a flood; one slot every 1/rate seconds does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal, Protocol

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
)
from aiogram.methods import Response, SendChatAction, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import LinkPreviewOptions

log = logging.getLogger(__name__)

GLOBAL_RATE = 30.0  # messages per second, all chats together (Telegram: about 30)
# A whisker above Telegram's 1/s and 20/min, so network jitter never makes two sends arrive
# closer together than the limit.
PRIVATE_INTERVAL = 1.05  # seconds between messages to one private chat
GROUP_INTERVAL = 3.1  # seconds between messages to a group or channel (20 per minute)
SEND_TIMEOUT = 30  # seconds for one Bot API call
FLOOD_WINDOW = 5.0  # 429s for two different chats this close together: the bot as a whole
REPLY_RETRY_LIMIT = 30  # a reply told to wait longer than this is not retried
TRANSIENT_PAUSE_AFTER = 3  # consecutive network/5xx failures before everything pauses
TRANSIENT_PAUSE_MAX = 60.0

Status = Literal["sent", "retry", "blocked", "rejected"]


class Priority(IntEnum):
    """Who goes first when several messages wait for a slot (lower first)."""

    REPLY = 0  # an answer to someone who just wrote to the bot
    BULK = 1  # alerts, digests


# What the messages sent from the current task are: replies unless the outbox says otherwise.
_priority: contextvars.ContextVar[Priority] = contextvars.ContextVar(
    "dozor_send_priority", default=Priority.REPLY
)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What happened to one message: sent, retry after `delay` s, chat blocked, or rejected."""

    status: Status
    reason: str = ""
    delay: float = 0.0


class Sender(Protocol):
    """Delivers one HTML message to one chat."""

    async def send(self, chat_id: int, html: str) -> SendResult: ...


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    chat_id: int = field(compare=False)
    granted: asyncio.Future[None] = field(compare=False)


class Pacer:
    """Grants send slots: at most `rate` per second overall and one per chat interval, the
    highest priority first, oldest first within a priority."""

    def __init__(
        self,
        *,
        rate: float = GLOBAL_RATE,
        private_interval: float = PRIVATE_INTERVAL,
        group_interval: float = GROUP_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._interval = 1.0 / rate
        self._private_interval = private_interval
        self._group_interval = group_interval
        self._clock = clock
        self._next_global = 0.0
        self._next_chat: dict[int, float] = {}
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._gate: asyncio.Task[None] | None = None
        self._last_flood: tuple[int, float] | None = None  # (chat, when) of the last 429

    @property
    def rate(self) -> float:
        return 1.0 / self._interval

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
        self._wake.set()

    def flood(self, chat_id: int, seconds: float) -> None:
        """Telegram answered 429 for a chat: hold it; when a second chat is refused within a
        few seconds, the limit is the bot's as a whole, and everything waits."""
        now = self._clock()
        self.pause(chat_id, seconds)
        last = self._last_flood
        if last is not None and last[0] != chat_id and now - last[1] < FLOOD_WINDOW:
            log.warning("Telegram is throttling the bot as a whole; pausing %.0f s", seconds)
            self.pause(None, seconds)
        self._last_flood = (chat_id, now)

    def busy_until(self, chat_id: int) -> float:
        """Seconds until this chat may be sent to again (0 when free)."""
        return max(0.0, self._next_chat.get(chat_id, 0.0) - self._clock())

    async def acquire(self, chat_id: int, priority: Priority = Priority.BULK) -> None:
        """Wait for a slot to send one message to `chat_id`."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(int(priority), next(self._seq), chat_id, loop.create_future())
        self._waiters.append(waiter)
        if self._gate is None or self._gate.done():
            self._gate = asyncio.create_task(self._grant(), name="pacer")
        self._wake.set()
        try:
            await waiter.granted
        except asyncio.CancelledError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    async def _grant(self) -> None:
        """Hand out slots while anyone waits; sleeps between slots, wakes for news."""
        while self._waiters:
            self._wake.clear()
            now = self._clock()
            wait = self._next_global - now
            if wait <= 0:
                ready = [w for w in self._waiters if self._next_chat.get(w.chat_id, 0.0) <= now]
                if ready:
                    chosen = min(ready)
                    self._waiters.remove(chosen)
                    self._next_global = max(now, self._next_global) + self._interval
                    self._next_chat[chosen.chat_id] = now + self.chat_interval(chosen.chat_id)
                    if not chosen.granted.done():
                        chosen.granted.set_result(None)
                    continue
                wait = min(self._next_chat.get(w.chat_id, 0.0) for w in self._waiters) - now
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wait, 0.001)):
                    await self._wake.wait()
        self._next_chat = {
            chat: moment for chat, moment in self._next_chat.items() if moment > self._clock()
        }


class PacingMiddleware(BaseRequestMiddleware):
    """Puts every message-sending Bot API call through the pacer (at the current task's
    priority) and tells the pacer about 429s. A reply told to wait briefly is retried."""

    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        chat_id = _paced_chat(method)
        if chat_id is None:
            return await make_request(bot, method)
        priority = _priority.get()
        for attempt in itertools.count():
            await self.pacer.acquire(chat_id, priority)
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                self.pacer.flood(chat_id, exc.retry_after)
                log.warning("chat %d: Telegram asked to wait %d s", chat_id, exc.retry_after)
                if priority != Priority.REPLY or attempt or exc.retry_after > REPLY_RETRY_LIMIT:
                    raise
        raise AssertionError("unreachable")


def _paced_chat(method: TelegramMethod[Any]) -> int | None:
    """The numeric chat a call posts into, if it is one Telegram rate-limits."""
    name = type(method).__name__
    if isinstance(method, SendChatAction) or not name.startswith(
        ("Send", "Copy", "Forward", "EditMessage")
    ):
        return None
    chat_id = getattr(method, "chat_id", None)
    return chat_id if isinstance(chat_id, int) else None


def pacer_of(bot: Bot) -> Pacer | None:
    """The pacer installed on a bot's session, if any."""
    for middleware in bot.session.middleware[:]:
        if isinstance(middleware, PacingMiddleware):
            return middleware.pacer
    return None


def install_pacer(bot: Bot, pacer: Pacer | None = None) -> Pacer:
    """Make every send through `bot` paced (once); returns the pacer in use."""
    installed = pacer_of(bot)
    if installed is not None:
        return installed
    pacer = pacer or Pacer()
    bot.session.middleware(PacingMiddleware(pacer))
    return pacer


class TelegramSender:
    """Bulk sends (alerts, digests) through aiogram, turning its exceptions into SendResults."""

    def __init__(
        self, bot: Bot, pacer: Pacer | None = None, *, timeout: int = SEND_TIMEOUT
    ) -> None:
        self._bot = bot
        self.pacer = install_pacer(bot, pacer)
        self._timeout = timeout
        self._transient = 0  # consecutive network/5xx failures, over all chats

    async def send(self, chat_id: int, html: str) -> SendResult:
        token = _priority.set(Priority.BULK)
        try:
            await self._bot.send_message(
                chat_id,
                html,
                parse_mode="HTML",
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                request_timeout=self._timeout,
            )
        except TelegramRetryAfter as exc:  # the pacer already holds the chat
            return SendResult("retry", exc.message, float(exc.retry_after))
        except TelegramForbiddenError as exc:
            return SendResult("blocked", exc.message)
        except TelegramBadRequest as exc:
            if "chat not found" in exc.message.lower():
                return SendResult("blocked", exc.message)
            return SendResult("rejected", exc.message)
        except (TelegramNetworkError, ClientDecodeError, TelegramAPIError) as exc:
            # Network trouble, 5xx, a proxy's HTML page: transient, the outbox retries. When
            # every send fails, Telegram (or the network) is down: everything pauses a little.
            self._transient += 1
            if self._transient >= TRANSIENT_PAUSE_AFTER:
                pause = min(TRANSIENT_PAUSE_MAX, 2.0 ** (self._transient - TRANSIENT_PAUSE_AFTER))
                self.pacer.pause(None, pause)
            return SendResult("retry", f"{type(exc).__name__}: {exc}")
        finally:
            _priority.reset(token)
        self._transient = 0
        return SendResult("sent")
