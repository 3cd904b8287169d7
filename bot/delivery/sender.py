"""The one sender: every message Dozor sends (alerts, digests, command replies, admin notices)
passes one `Pacer`, which keeps within Telegram's limits instead of reacting to 429s.

The pacer sits in the bot's HTTP session as a request middleware, so replies that handlers
send with `message.answer()` are paced with the same clock as the outbox's bulk sends, and go
first: a waiting reply takes the next free slot ahead of any waiting alert. Spacing rather than
a token bucket: a bucket of capacity N lets N messages through in the first instant, which
Telegram counts as a flood; one slot every 1/rate seconds does not.

Slots are shared fairly between chats: each chat has its own queue, and of the chats that may
be sent to now, the one served least recently goes first. A chat flooding the bot with
commands therefore waits behind its own replies, never everyone else's.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Generic, Literal, Protocol, TypeVar

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
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
)
from aiogram.methods import Response, SendChatAction, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import BufferedInputFile, LinkPreviewOptions

from bot.metrics import Metrics

log = logging.getLogger(__name__)

GLOBAL_RATE = 30.0  # Telegram's overall limit, messages per second (the SEND_RATE default)
# Share of the overall limit the pacer grants. Telegram counts messages when they arrive, not
# when they leave: if one message is held up on its way (a busy event loop, a slower TCP
# connection) while the next 30 are not, all 31 land in one second. At rate × 0.94 any 31
# consecutive messages leave at least 30 / (30 × 0.94) = 1.064 s apart (the pacer keeps a
# window of the moments its last 30 messages actually left), so one message may arrive up to
# 64 ms later, relative to the 30th after it, before Telegram counts 31 in a second.
# Measured on the stand-in with exact windows: at ×1.0 16 429s and 16 msg/s (the whole bot
# paused); at ×0.94 none, 28.1 msg/s.
GLOBAL_HEADROOM = 0.94
# Slots are planned on a grid one interval apart. Timers fire late and a busy event loop
# later still; a late slot keeps the grid, and the next ones catch up, never closer together
# than CATCH_UP_GAP intervals and never for more than CATCH_UP_LAG intervals of lateness (after
# a longer stall the grid restarts from now: missed slots are not made up in a burst). The
# window above holds whatever the grid allows.
CATCH_UP_GAP = 0.5
CATCH_UP_LAG = 3.0
# The same stall that made a slot late can hold a message up after it left the pacer (on its
# way through aiohttp), past the window's 64 ms: the window widens by the worst lateness seen
# lately, forgotten at STALL_FORGET seconds per second, up to STALL_MARGIN_MAX. A calm process
# keeps the full pace; one starved of CPU sends a little slower instead of being refused.
STALL_FORGET = 0.05
STALL_MARGIN_MAX = 0.5  # seconds
CLOCK_EPSILON = 1e-9  # seconds: moments this close count as the same (float sums of intervals)
# A whisker above Telegram's 1/s and 20/min, so network jitter never makes two sends arrive
# closer together than the limit.
PRIVATE_INTERVAL = 1.05  # seconds between messages to one private chat
GROUP_INTERVAL = 3.1  # seconds between messages to a group or channel (20 per minute)
# How long a chat's last slot counts for fairness; a chat idle longer ranks as never served,
# and its state is dropped, so memory follows the chats active in the last minute.
FAIRNESS_MEMORY = 60.0
PRUNE_STEPS = 2  # idle chats looked at per slot granted (more than are created per slot)
# Replies go first, but while alerts wait at most this many replies go in a row: alerts keep
# at least a quarter of the pace (about 7/s) however many chats flood the bot with commands.
REPLY_RUN = 3
SEND_TIMEOUT = 30  # seconds for one Bot API call
MAX_CAPTION = 1024  # characters Telegram allows in a photo's caption
FLOOD_WINDOW = 5.0  # 429s for two different chats this close together: the bot as a whole
REPLY_RETRY_LIMIT = 30  # a reply told to wait longer than this is not retried
TRANSIENT_PAUSE_AFTER = 3  # consecutive network/5xx failures before everything pauses
TRANSIENT_PAUSE_MAX = 60.0

Status = Literal["sent", "retry", "blocked", "rejected", "moved"]
Ticket = TypeVar("Ticket")


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
    """What happened to one message: sent, retry after `delay` s, chat blocked, rejected,
    or moved (a group became a supergroup, whose id is `moved_to`; nothing was sent)."""

    status: Status
    reason: str = ""
    delay: float = 0.0
    moved_to: int | None = None


class Sender(Protocol):
    """Delivers one HTML message to one chat, with a preview of its first link or not, or
    one picture with a caption (plain text)."""

    async def send(self, chat_id: int, html: str, *, previews: bool = False) -> SendResult: ...

    async def send_photo(self, chat_id: int, png: bytes, caption: str) -> SendResult: ...


@dataclass(slots=True)
class _Waiting(Generic[Ticket]):
    seq: int  # arrival order over all chats
    ticket: Ticket
    since: float  # when it came


@dataclass(eq=False, slots=True)
class _Lane(Generic[Ticket]):
    """One chat: its waiting messages (a queue per priority) and when it may be sent to."""

    chat_id: int
    touched: float  # last grant or look by the pruner: lanes are kept in this order
    queues: tuple[deque[_Waiting[Ticket]], ...] = field(
        default_factory=lambda: tuple(deque() for _ in Priority)
    )
    free_at: float = 0.0  # the chat's own spacing, or a pause Telegram asked for
    served_at: float = -math.inf  # its last slot; -inf: not in living memory
    epoch: int = 0  # bumped at every re-filing; heap entries of older epochs are stale

    def head(self) -> tuple[int, _Waiting[Ticket]] | None:
        """The message this chat sends next, with its priority."""
        for priority, queue in enumerate(self.queues):
            if queue:
                return priority, queue[0]
        return None


_Free = tuple[float, int, int, int]  # (served_at, seq, epoch, chat) of a chat free to send


class SlotSchedule(Generic[Ticket]):
    """Who may send next, and when: the pacer's decisions without I/O or a clock of its own.

    Slots are planned `interval` seconds apart (late ones catch up, see CATCH_UP_GAP), no
    `window + 1` of them within `window` intervals (counted from when each was granted, or
    from when its message left, reported by `sent`), and to a chat at most one every
    `chat_interval(chat)` seconds. Of the chats with a message waiting that may be sent to
    now, the highest priority wins, then the chat served least recently (never, or longer ago
    than `memory`, ranks first), then the one whose waiting message is oldest; within one chat
    messages go in order. Chats are kept in two heaps (free now; waiting for their spacing), so
    each decision costs O(log chats) however many are waiting.
    """

    def __init__(
        self,
        *,
        interval: float,
        private_interval: float = PRIVATE_INTERVAL,
        group_interval: float = GROUP_INTERVAL,
        window: int = int(GLOBAL_RATE),
        memory: float = FAIRNESS_MEMORY,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.interval = interval
        self._span = window * interval  # the least time from a slot to the window-th after it
        # [ticket, moment] of the last `window` slots, oldest first: when each was granted,
        # or when its message left, if later (see `sent`).
        self._recent: deque[list[Any]] = deque(maxlen=window)
        self._stall = 0.0  # the worst lateness of a slot lately, in seconds
        self._stall_at = -math.inf  # when it was seen
        self._private_interval = private_interval
        self._group_interval = group_interval
        self._memory = memory
        self._next_global = -math.inf  # the next slot on the grid, or the end of a pause
        self._lanes: OrderedDict[int, _Lane[Ticket]] = OrderedDict()  # least touched first
        # (served_at, seq, epoch, chat) of chats that may be sent to now, by priority ...
        self._free: tuple[list[_Free], ...] = tuple([] for _ in Priority)
        self._replies_in_row = 0  # replies granted since the last bulk message
        # ... and (free_at, epoch, chat) of chats waiting for their spacing or a pause.
        self._spaced: list[tuple[float, int, int]] = []
        self._seq = itertools.count()
        self._waiting = 0

    def __len__(self) -> int:
        """Messages waiting for a slot."""
        return self._waiting

    @property
    def chats(self) -> int:
        """Chats whose state is kept (waiting, recently served or paused)."""
        return len(self._lanes)

    def chat_interval(self, chat_id: int) -> float:
        # Private chats have positive ids; groups and channels negative ones.
        return self._private_interval if chat_id > 0 else self._group_interval

    def add(self, chat_id: int, priority: Priority, ticket: Ticket, now: float) -> None:
        """Queue a message for `chat_id`; `ticket` is handed back by `take` when it may go."""
        lane = self._lane(chat_id, now)
        before = lane.head()
        lane.queues[priority].append(_Waiting(next(self._seq), ticket, now))
        self._waiting += 1
        if before is None or priority < before[0]:
            self._file(lane, now)  # the chat's rank improved: file it again
        self._prune(now, 1)

    def remove(self, chat_id: int, ticket: Ticket, now: float) -> bool:
        """Withdraw a waiting message (its sender gave up); False if it is not waiting."""
        lane = self._lanes.get(chat_id)
        if lane is None:
            return False
        for queue in lane.queues:
            for waiting in queue:
                if waiting.ticket == ticket:
                    queue.remove(waiting)
                    self._waiting -= 1
                    self._file(lane, now)
                    return True
        return False

    def hold(self, chat_id: int | None, until: float, now: float) -> None:
        """Grant nothing to `chat_id` (with None: to anyone) before `until`."""
        if chat_id is None:
            self._next_global = max(self._next_global, until)
            return
        lane = self._lane(chat_id, now)
        lane.free_at = max(lane.free_at, until)
        self._file(lane, now)

    def free_at(self, chat_id: int) -> float:
        """When `chat_id` may be sent to next, by its own spacing or pause."""
        lane = self._lanes.get(chat_id)
        return -math.inf if lane is None else lane.free_at

    def take(
        self, now: float, alive: Callable[[Ticket], bool] = lambda _: True
    ) -> tuple[int, Ticket] | float:
        """The chat and ticket granted a slot at `now`, or the seconds until one may be.

        Tickets for which `alive` is false (their sender gave up) are dropped without using
        a slot. Returns `math.inf` when nothing is waiting.
        """
        while self._spaced and self._spaced[0][0] <= now:
            _, epoch, chat_id = heapq.heappop(self._spaced)
            lane = self._lanes.get(chat_id)
            if lane is not None and lane.epoch == epoch:
                self._file(lane, now)  # its spacing is over: among the free ones now
        due = self._due()
        if now < due - CLOCK_EPSILON:
            return due - now
        while heap := self._next_heap():
            *_, epoch, chat_id = heapq.heappop(heap)
            lane = self._lanes.get(chat_id)
            if lane is None or lane.epoch != epoch:
                continue  # stale: the chat was filed again since
            head = lane.head()
            if head is None:
                continue
            priority, waiting = head
            ready = max(lane.free_at, waiting.since)  # when this slot could have been granted
            lane.queues[priority].popleft()
            self._waiting -= 1
            if not alive(waiting.ticket):
                self._file(lane, now)
                continue
            # On the grid, however late this slot is (the next ones catch up), unless it is
            # so late that catching up would be a burst: then afresh from now.
            planned = max(self._next_global, self._window_due(), ready)
            self._note_lateness(now - max(due, ready), now)
            lag = CATCH_UP_LAG * self.interval
            self._next_global = max(planned, now - lag) + self.interval
            self._recent.append([waiting.ticket, now])
            self._replies_in_row = self._replies_in_row + 1 if priority == Priority.REPLY else 0
            lane.served_at = now
            lane.free_at = max(lane.free_at, now + self.chat_interval(chat_id))
            lane.touched = now
            self._lanes.move_to_end(chat_id)
            self._file(lane, now)
            self._prune(now, PRUNE_STEPS)
            return chat_id, waiting.ticket
        if self._spaced:
            return self._spaced[0][0] - now
        return math.inf

    def sent(self, ticket: Ticket, at: float) -> None:
        """The message granted a slot for `ticket` left at `at` (after its grant: the sender
        was busy meanwhile). The window counts from then, so a message held up on its way
        out never lands together with the window's last."""
        for entry in reversed(self._recent):
            if entry[0] is ticket:
                entry[1] = max(entry[1], at)
                return

    def _due(self) -> float:
        """The first moment a slot may be granted, whoever it is for."""
        due = max(self._next_global, self._window_due())
        if self._recent:
            due = max(due, self._recent[-1][1] + CATCH_UP_GAP * self.interval)
        return due

    @property
    def margin(self) -> float:
        """Seconds the window is widened by now, for the stalls seen lately."""
        return self._stall

    def _window_due(self) -> float:
        """When the oldest slot of a full window is a window's span (and margin) ago."""
        if len(self._recent) < (self._recent.maxlen or 0):
            return -math.inf
        return float(self._recent[0][1]) + self._span + self._stall

    def _note_lateness(self, late: float, now: float) -> None:
        forgotten = max(0.0, self._stall - (now - self._stall_at) * STALL_FORGET)
        self._stall = min(STALL_MARGIN_MAX, max(late, forgotten))
        self._stall_at = now

    def _next_heap(self) -> list[_Free] | None:
        """Replies first, but never more than REPLY_RUN in a row while alerts wait: a flood
        of commands from many chats slows alerts down, it never stops them."""
        replies, bulk = self._free[Priority.REPLY], self._free[Priority.BULK]
        if bulk and (not replies or self._replies_in_row >= REPLY_RUN):
            return bulk
        return replies or None

    def _lane(self, chat_id: int, now: float) -> _Lane[Ticket]:
        lane = self._lanes.get(chat_id)
        if lane is None:
            lane = self._lanes[chat_id] = _Lane(chat_id, touched=now)
        return lane

    def _file(self, lane: _Lane[Ticket], now: float) -> None:
        """(Re)file a chat in the heap it belongs in; its older entries become stale."""
        lane.epoch += 1
        head = lane.head()
        if head is None:
            return
        if lane.free_at > now:
            heapq.heappush(self._spaced, (lane.free_at, lane.epoch, lane.chat_id))
            return
        # Forgetting old service keeps the order fair after the state of idle chats is dropped.
        served = lane.served_at if now - lane.served_at < self._memory else -math.inf
        priority, waiting = head
        heapq.heappush(self._free[priority], (served, waiting.seq, lane.epoch, lane.chat_id))
        if sum(map(len, self._free)) + len(self._spaced) > 4 * len(self._lanes) + 64:
            self._compact()

    def _compact(self) -> None:
        """Drop stale heap entries (many re-filings of the same chats, e.g. cancellations)."""
        for heap in self._free:
            heap[:] = [e for e in heap if self._current(e[3], e[2])]
            heapq.heapify(heap)
        self._spaced = [e for e in self._spaced if self._current(e[2], e[1])]
        heapq.heapify(self._spaced)

    def _current(self, chat_id: int, epoch: int) -> bool:
        lane = self._lanes.get(chat_id)
        return lane is not None and lane.epoch == epoch

    def _prune(self, now: float, steps: int) -> None:
        """Forget up to `steps` chats idle for longer than `memory` (oldest first)."""
        for _ in range(steps):
            if not self._lanes:
                return
            chat_id, lane = next(iter(self._lanes.items()))
            if now - lane.touched < self._memory:
                return  # every other lane was touched more recently
            if lane.head() is None and lane.free_at <= now:
                del self._lanes[chat_id]
            else:  # still waiting, or paused for long: look again later
                lane.touched = now
                self._lanes.move_to_end(chat_id)


class Pacer:
    """Grants send slots: at most `rate × headroom` per second overall and one per chat
    interval; the highest priority first, then the chat served least recently."""

    def __init__(
        self,
        *,
        rate: float = GLOBAL_RATE,
        headroom: float = GLOBAL_HEADROOM,
        private_interval: float = PRIVATE_INTERVAL,
        group_interval: float = GROUP_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if not 0 < headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")
        self._rate = rate
        self._schedule: SlotSchedule[asyncio.Future[None]] = SlotSchedule(
            interval=1.0 / (rate * headroom),
            private_interval=private_interval,
            group_interval=group_interval,
            window=max(1, int(rate)),
        )
        self._clock = clock
        self._wake = asyncio.Event()
        self._gate: asyncio.Task[None] | None = None
        self._last_flood: tuple[int, float] | None = None  # (chat, when) of the last 429

    @property
    def rate(self) -> float:
        """Telegram's overall limit this pacer keeps under (messages per second)."""
        return self._rate

    @property
    def pace(self) -> float:
        """Slots granted per second at most, the limit less the headroom."""
        return 1.0 / self._schedule.interval

    @property
    def waiting(self) -> int:
        """Messages waiting for a slot."""
        return len(self._schedule)

    def chat_interval(self, chat_id: int) -> float:
        return self._schedule.chat_interval(chat_id)

    def pause(self, chat_id: int | None, seconds: float) -> None:
        """Hold a chat (or, with None, everything) for `seconds`, as Telegram asked."""
        now = self._clock()
        self._schedule.hold(chat_id, now + seconds, now)
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
        return max(0.0, self._schedule.free_at(chat_id) - self._clock())

    async def acquire(self, chat_id: int, priority: Priority = Priority.BULK) -> None:
        """Wait for a slot to send one message to `chat_id`."""
        granted = asyncio.get_running_loop().create_future()
        self._schedule.add(chat_id, priority, granted, self._clock())
        if self._gate is None or self._gate.done():
            self._gate = asyncio.create_task(self._grant(), name="pacer")
        self._wake.set()
        try:
            await granted
        except asyncio.CancelledError:
            self._schedule.remove(chat_id, granted, self._clock())
            raise
        # The caller sends right away; this moment, not the grant's, is when the message left.
        self._schedule.sent(granted, self._clock())

    async def _grant(self) -> None:
        """Hand out slots while anyone waits; sleeps between slots, wakes for news."""
        while len(self._schedule):
            self._wake.clear()
            taken = self._schedule.take(self._clock(), alive=_not_done)
            if isinstance(taken, tuple):
                taken[1].set_result(None)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(min(taken, 3600.0), 0.001)):
                    await self._wake.wait()


def _not_done(future: asyncio.Future[None]) -> bool:
    # A sender cancelled while waiting: its slot goes to the next one.
    return not future.done()


class PacingMiddleware(BaseRequestMiddleware):
    """Puts every message-sending Bot API call through the pacer (at the current task's
    priority) and tells the pacer about 429s. A reply told to wait briefly is retried.
    Every 429, of any call through the session, is counted in `metrics`."""

    def __init__(self, pacer: Pacer, metrics: Metrics | None = None) -> None:
        self.pacer = pacer
        self._too_many = (metrics or Metrics()).telegram_429

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        chat_id = _paced_chat(method)
        if chat_id is None:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter:
                self._too_many.inc()
                raise
        priority = _priority.get()
        for attempt in itertools.count():
            await self.pacer.acquire(chat_id, priority)
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                self._too_many.inc()
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


def install_pacer(bot: Bot, pacer: Pacer | None = None, metrics: Metrics | None = None) -> Pacer:
    """Make every send through `bot` paced (once), its 429s counted in `metrics`; returns
    the pacer in use."""
    installed = pacer_of(bot)
    if installed is not None:
        return installed
    pacer = pacer or Pacer()
    bot.session.middleware(PacingMiddleware(pacer, metrics))
    return pacer


class TelegramSender:
    """Bulk sends (alerts, digests) through aiogram, turning its exceptions into SendResults."""

    def __init__(
        self,
        bot: Bot,
        pacer: Pacer | None = None,
        *,
        timeout: int = SEND_TIMEOUT,
        metrics: Metrics | None = None,
    ) -> None:
        """`metrics`: where the bot's 429s are counted (when this installs the pacer)."""
        self._bot = bot
        self.pacer = install_pacer(bot, pacer, metrics)
        self._timeout = timeout
        self._transient = 0  # consecutive network/5xx failures, over all chats

    async def send(self, chat_id: int, html: str, *, previews: bool = False) -> SendResult:
        """Send one message; `previews` lets Telegram show a preview of its first link (a
        chat's choice for its alerts; off by default, as digests hold many links)."""
        return await self._attempt(
            self._bot.send_message(
                chat_id,
                html,
                parse_mode="HTML",
                link_preview_options=LinkPreviewOptions(is_disabled=not previews),
                request_timeout=self._timeout,
            )
        )

    async def send_photo(self, chat_id: int, png: bytes, caption: str) -> SendResult:
        """Send one PNG with a plain-text caption (at most 1024 characters)."""
        return await self._attempt(
            self._bot.send_photo(
                chat_id,
                BufferedInputFile(png, filename="chart.png"),
                caption=caption[:MAX_CAPTION],
                parse_mode=None,
                request_timeout=self._timeout,
            )
        )

    async def _attempt(self, request: Awaitable[object]) -> SendResult:
        token = _priority.set(Priority.BULK)
        try:
            await request
        except TelegramRetryAfter as exc:  # the pacer already holds the chat
            return SendResult("retry", exc.message, float(exc.retry_after))
        except TelegramForbiddenError as exc:
            return SendResult("blocked", exc.message)
        except TelegramMigrateToChat as exc:  # a TelegramAPIError: caught before those
            return SendResult("moved", exc.message, moved_to=exc.migrate_to_chat_id)
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
