"""Per-chat input throttle: a chat that floods the bot has its excess updates dropped, with
one "slow down" notice per flood episode, so its flood costs its own replies, not everyone's.

Bounds, per chat (a group is one chat, whoever writes in it), chosen so that a fast-typing
human never meets them: at most 5 updates in progress at once (being handled, or waiting for a
slot to reply, which Telegram spaces a second apart per chat), and at most 30 a minute after a
burst of 10 (a bucket refilled at one update every 2 s). An update beyond either bound is
dropped before any filter or handler runs (a dropped button press is still answered, silently,
so its spinner stops). Updates no handler takes (chatter in a group) are not counted against
the rate.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from aiogram import BaseMiddleware, Bot, Router
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import ClientDecodeError, TelegramAPIError
from aiogram.types import CallbackQuery, Message, TelegramObject

from bot.i18n import Catalog, language_for

log = logging.getLogger(__name__)

MAX_IN_PROGRESS = 5  # updates of one chat being handled at once
BURST = 10  # updates a chat may send at once (within MAX_IN_PROGRESS being handled) ...
PER_MINUTE = 30  # ... and in a minute after that
# A drop this long after the chat's previous drop starts a new flood episode (a new notice);
# a chat flooding without pause gets a single notice.
EPISODE_GAP = 30.0
PRUNE_STEPS = 2  # chats looked at per update (one is created at most)


class Verdict(Enum):
    """What to do with an incoming update."""

    HANDLE = "handle"
    DROP = "drop"
    DROP_AND_NOTIFY = "drop and notify"  # the first drop of a flood episode


@dataclass(slots=True)
class _ChatInput:
    touched: float  # last update or look by the pruner: chats are kept in this order
    tokens: float = BURST
    refilled_at: float = 0.0
    in_progress: int = 0
    dropped_at: float = -math.inf


class InputThrottle:
    """The throttle's bookkeeping, without I/O: admit or drop each update of a chat."""

    def __init__(
        self,
        *,
        max_in_progress: int = MAX_IN_PROGRESS,
        burst: int = BURST,
        per_minute: float = PER_MINUTE,
        episode_gap: float = EPISODE_GAP,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_in_progress < 1 or burst < 1 or per_minute <= 0:
            raise ValueError("the bounds must be positive")
        self._max_in_progress = max_in_progress
        self._burst = float(burst)
        self._refill = per_minute / 60.0  # tokens per second
        self._episode_gap = episode_gap
        # A chat untouched this long (30 s with the defaults) with nothing in progress is as
        # good as new (its bucket full, its episode over), so its state is dropped: memory
        # follows the chats active in the last half-minute, not every chat ever seen.
        self._rest_after = max(burst / self._refill, episode_gap)
        self._clock = clock
        self._chats: OrderedDict[int, _ChatInput] = OrderedDict()  # least touched first

    def __len__(self) -> int:
        """Chats whose state is kept."""
        return len(self._chats)

    @property
    def in_progress(self) -> int:
        """Updates admitted and not finished, over all chats."""
        return sum(state.in_progress for state in self._chats.values())

    def admit(self, chat_id: int) -> Verdict:
        """Decide on an update of `chat_id`; a HANDLE must be followed by `finish`."""
        now = self._clock()
        self._prune(now)
        state = self._chats.get(chat_id)
        if state is None:
            state = self._chats[chat_id] = _ChatInput(touched=now, refilled_at=now)
        else:
            state.touched = now
            self._chats.move_to_end(chat_id)
        state.tokens = min(self._burst, state.tokens + (now - state.refilled_at) * self._refill)
        state.refilled_at = now
        if state.in_progress < self._max_in_progress and state.tokens >= 1.0:
            state.tokens -= 1.0
            state.in_progress += 1
            return Verdict.HANDLE
        new_episode = now - state.dropped_at > self._episode_gap
        state.dropped_at = now
        return Verdict.DROP_AND_NOTIFY if new_episode else Verdict.DROP

    def finish(self, chat_id: int, *, handled: bool = True) -> None:
        """An admitted update is done; one no handler took is not counted against the rate."""
        state = self._chats.get(chat_id)
        if state is None:  # cannot happen: a chat with an update in progress is kept
            return
        state.in_progress = max(0, state.in_progress - 1)
        if not handled:
            state.tokens = min(self._burst, state.tokens + 1.0)

    def _prune(self, now: float) -> None:
        """Forget up to PRUNE_STEPS chats at rest (oldest first), more than are created."""
        for _ in range(PRUNE_STEPS):
            if not self._chats:
                return
            chat_id, state = next(iter(self._chats.items()))
            if now - state.touched < self._rest_after:
                return  # every other chat was touched more recently
            if state.in_progress == 0:
                del self._chats[chat_id]
            else:  # a handler running for minutes: look again later
                state.touched = now
                self._chats.move_to_end(chat_id)


class ThrottleMiddleware(BaseMiddleware):
    """An outer middleware for messages and callback queries: bounds each chat's updates by
    an `InputThrottle` and tells a flooding chat once per episode that it was cut short."""

    def __init__(self, throttle: InputThrottle | None = None) -> None:
        # Not `throttle or ...`: a throttle with no chats yet has len() 0, so is falsy.
        self.throttle = throttle if throttle is not None else InputThrottle()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        chat_id = _chat_of(event)
        if chat_id is None:
            return await handler(event, data)
        verdict = self.throttle.admit(chat_id)
        if verdict is Verdict.HANDLE:
            handled = True
            try:
                result = await handler(event, data)
                handled = result is not UNHANDLED
                return result
            finally:
                self.throttle.finish(chat_id, handled=handled)
        if verdict is Verdict.DROP_AND_NOTIFY:
            log.info("chat %d is flooding the bot; dropping its excess updates", chat_id)
            await _notify(event, data.get("bot"), data.get("catalog"), chat_id)
        elif isinstance(event, CallbackQuery):
            await _settle(event, chat_id)
        return None  # handled, by dropping: no other router sees it


async def _notify(
    event: TelegramObject, bot: Bot | None, catalog: Catalog | None, chat_id: int
) -> None:
    """The one notice of a flood episode, in the language of the person flooding (no database
    read: a flood must cost nothing); a failure to send it is logged, never raised."""
    user = getattr(event, "from_user", None)
    language = language_for(getattr(user, "language_code", None))
    text = (catalog or Catalog()).texts(language)("slow-down")
    try:
        if isinstance(event, CallbackQuery):
            await event.answer(text)  # a toast on the button; also stops its spinner
        elif bot is not None:
            await bot.send_message(chat_id, text)
    except (TelegramAPIError, ClientDecodeError) as exc:
        log.warning("could not tell chat %d to slow down: %s", chat_id, exc)


async def _settle(press: CallbackQuery, chat_id: int) -> None:
    """A dropped press is still answered, with nothing to say: an unanswered button keeps
    spinning on the person's screen for many seconds (the episode's one toast said why)."""
    try:
        await press.answer()
    except (TelegramAPIError, ClientDecodeError) as exc:
        log.warning("could not settle a dropped press in chat %d: %s", chat_id, exc)


def _chat_of(event: TelegramObject) -> int | None:
    """The chat an update counts against: where it was written, or the button's chat."""
    if isinstance(event, Message):
        return event.chat.id
    if isinstance(event, CallbackQuery):
        if event.message is not None:
            return event.message.chat.id
        return event.from_user.id  # a button under an inline-mode message: the user's own
    return None


def install_throttle(router: Router, throttle: InputThrottle | None = None) -> InputThrottle:
    """Throttle the messages and callback queries reaching `router`; returns the throttle."""
    middleware = ThrottleMiddleware(throttle)
    router.message.outer_middleware(middleware)
    router.callback_query.outer_middleware(middleware)
    return middleware.throttle


def throttle_of(router: Router) -> InputThrottle | None:
    """The throttle installed on `router`'s messages, if any."""
    for middleware in router.message.outer_middleware:
        if isinstance(middleware, ThrottleMiddleware):
            return middleware.throttle
    return None
