"""The outbox worker: sends queued alerts and digests as fast as the pacer allows.

A row is marked sent only after Telegram accepted the message carrying it, so a `kill -9` at
any moment loses nothing; at most the messages in flight are sent again. Chats are served
concurrently (the pacer keeps the pace), each chat one message at a time, oldest row first,
so a subscriber's alerts arrive in order. Alerts waiting together for one chat go out as one
message, in the chat's language and time zone. The worker wakes the moment ingest stores
something (no polling delay).

A chat that is muted or inside its quiet hours has its alerts held: they are postponed, whole,
to the end of the mute or quiet spell (no attempt counted) and then go out together. Digests
are not held: the chat chose their time itself.

A group that became a supergroup has a new id, which Telegram names in its refusal: the chat
(settings, queries, matches, waiting messages) is moved to it, no attempt counted, and the
messages go out to the new id on the next pass; `on_moved` then lets the matcher follow.

When the outcome of a send cannot be recorded (disk full, a read-only or broken database), the
worker stops sending instead of looping: the message was delivered but still looks due, so
sending on would repeat it every second. It remembers what it delivered, tells the admins once,
retries the recording with back-off and resumes when the database takes writes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from bot.delivery.chats import chat_texts, chat_zone, held_until
from bot.delivery.photos import BadChart, draw_chart_async
from bot.delivery.render import MAX_BATCH, AlertParts, render_alerts
from bot.delivery.sender import Sender, SendResult
from bot.domain import StoredPost, Subscriber
from bot.folding import Fingerprints, Story, fold
from bot.i18n import Argument, Catalog, Notify, Texts
from bot.logs import log_context
from bot.metrics import Metrics
from bot.storage import MEDIA_CHART, PendingMessage, Storage

log = logging.getLogger(__name__)

IDLE_CHECK = 5.0  # seconds; a safety net — new alerts wake the worker at once
MAX_RETRY_DELAY = 600.0
CONCURRENCY = 32  # messages in flight at once (Telegram answers in ~0.1 s; 30/s needs ~3+)
SHUTDOWN_GRACE = 10.0  # seconds in-flight sends may take to finish on shutdown
BLOCKED = "the chat blocked the bot or no longer exists"
NOTHING_TO_SEND = "nothing to send"
STALL_FIRST = 1.0  # seconds before retrying a failed recording, doubling...
STALL_MAX = 60.0  # ...up to a minute
OUTBOX_FINGERPRINTS = 2_000  # posts whose fingerprints the sender keeps (~2.3 KB each)


def retry_delay(attempts: int) -> float:
    """Back-off for transient failures: 2, 4, 8 ... seconds, capped at ten minutes."""
    return float(min(MAX_RETRY_DELAY, 2 ** (attempts + 1)))


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ChatView:
    """How a chat's messages are written and sent: its language, zone and link previews,
    and until when its alerts are held (None: they may go now)."""

    texts: Texts
    tz: tzinfo
    previews: bool = False
    held_until: datetime | None = None


def chat_view(
    subscriber: Subscriber | None, catalog: Catalog, default_tz: tzinfo, now: datetime
) -> ChatView:
    if subscriber is None:  # gone meanwhile: the service's defaults
        return ChatView(catalog.texts(None), default_tz)
    return ChatView(
        chat_texts(catalog, subscriber),
        chat_zone(subscriber, default_tz),
        subscriber.link_previews,
        held_until(subscriber, now, default_tz),
    )


def next_message(
    rows: Sequence[PendingMessage],
    t: Texts,
    tz: tzinfo,
    *,
    batch: bool = True,
    fingerprints: Fingerprints | None = None,
) -> tuple[str, list[PendingMessage]]:
    """The HTML of the next message for one chat (in its language `t` and zone `tz`), and
    the rows (oldest first) it carries.

    Alerts waiting together become one message; a digest is always a message of its own.
    `fingerprints` caches the posts' fingerprints across calls (one post is alerted to
    hundreds of chats).
    """
    first = rows[0]
    if first.kind != "alert" or first.post is None:
        return first.text or "", [first]
    alerts: list[tuple[PendingMessage, StoredPost]] = []
    for row in rows if batch else rows[:1]:
        if row.kind != "alert" or row.post is None:
            break
        alerts.append((row, row.post))
    # Alerts waiting together that tell one story (reposts, the same news from several
    # channels) go out as one, naming the other sources.
    stories = fold(
        alerts,
        key=lambda alert: alert[1].id,
        text=lambda alert: alert[1].post.text,
        when=lambda alert: alert[1].post.date,
        fingerprints=fingerprints,
    )
    parts = [_alert_parts(story) for story in stories]
    text, used = render_alerts(parts, t, tz)
    carried = [row for story in stories[:used] for row, _ in story.items]
    return text, sorted(carried, key=lambda row: row.id)


def _alert_parts(story: Story[tuple[PendingMessage, StoredPost]]) -> AlertParts:
    """One alert for a story: its lead post, every query any of its posts matched, and the
    other posts (named under it)."""
    lead, post = story.lead
    queries = dict.fromkeys(q for row, _ in story.items for q in row.queries)
    return AlertParts(post, tuple(queries), lead.spans, tuple(other for _, other in story.others))


class OutboxWorker:
    """Drains the outbox; woken by `ready` as soon as ingest queues something."""

    def __init__(
        self,
        storage: Storage,
        sender: Sender,
        tz: tzinfo,
        ready: asyncio.Event,
        *,
        concurrency: int = CONCURRENCY,
        batch: bool = True,
        alarm: Notify | None = None,
        catalog: Catalog | None = None,
        clock: Callable[[], datetime] = _utc_now,
        on_moved: Callable[[int, int], Awaitable[None]] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """`tz` is the service's zone, for chats that chose none; `catalog` the texts
        (loaded here when not given); `clock` the time mutes and quiet hours are judged by;
        `on_moved(old, new)` is awaited after a chat was moved to its supergroup's id;
        `metrics`: where outcomes and send latency are counted and each pass of `run` is
        reported to the health check."""
        self._storage = storage
        self._sender = sender
        self._tz = tz
        self._catalog = catalog or Catalog()
        self._clock = clock
        self._ready = ready
        self._concurrency = concurrency
        self._batch = batch
        self._stop = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[int]] = {}  # chat → its send
        self._alone: set[int] = set()  # rows of a refused batch: retried one by one
        self._alarm = alarm
        self._alarms: set[asyncio.Task[None]] = set()
        self._on_moved = on_moved
        # Rows Telegram accepted whose sending could not be recorded: never sent again.
        self._unrecorded: set[int] = set()
        self._record_failures = 0  # failed attempts to record, in the current stall
        self._stalled_until: float | None = None  # loop time; sending is paused until then
        self.sent = 0  # rows Telegram accepted since the worker was made
        # A post alerted to hundreds of chats is fingerprinted once, not once per chat.
        self._fingerprints = Fingerprints(OUTBOX_FINGERPRINTS)
        self._metrics = metrics or Metrics()

    def stop(self) -> None:
        """Take no new work; `run` returns once the sends in flight are done."""
        self._stop.set()
        self._ready.set()

    async def run(self, *, grace: float = SHUTDOWN_GRACE) -> None:
        """Send until stopped, then let sends in flight finish for up to `grace` seconds;
        what is unfinished stays in the outbox for the next start."""
        try:
            while not self._stop.is_set():
                self._metrics.beat("outbox")
                self._ready.clear()
                if self._stalled_until is not None:
                    await self._wait_out_stall()
                    continue
                try:
                    await self._start_due()
                    idle = await self._idle_wait()
                except Exception:  # a database hiccup: try again shortly, do not die
                    log.exception("could not read the outbox")
                    await asyncio.sleep(1)
                    continue
                if self._stop.is_set():
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(idle):
                        await self._ready.wait()
        finally:
            await self._finish(grace)

    async def send_due(self) -> int:
        """Send everything due now (and what becomes due meanwhile); returns how many rows
        Telegram accepted. For one-shot use (`digest --now`, the demo)."""
        before = self.sent
        while not self._stop.is_set():
            if self._stalled_until is not None:
                due = self._stalled_until <= asyncio.get_running_loop().time()
                if not due or not await self.try_recover():
                    break  # the caller tries again later
            started = await self._start_due()
            if not started and not self._in_flight:
                break
            if self._in_flight:
                await asyncio.wait(
                    list(self._in_flight.values()), return_when=asyncio.FIRST_COMPLETED
                )
        return self.sent - before

    async def _idle_wait(self) -> float:
        if self._in_flight:
            return IDLE_CHECK  # a finishing send sets `ready`
        due = await self._storage.next_attempt_at()
        if due is None:
            return IDLE_CHECK
        return min(IDLE_CHECK, max(0.05, (due - self._clock()).total_seconds()))

    @property
    def stalled(self) -> bool:
        """Sending is paused because outcomes cannot be recorded."""
        return self._stalled_until is not None

    async def _start_due(self) -> int:
        """Start a send for every chat with something due and nothing in flight."""
        room = self._concurrency - len(self._in_flight)
        if room <= 0 or self._stalled_until is not None:
            return 0
        started = await self._start_chats(self._clock(), room)
        # New alerts wait in the database (clustered by post) until filed into their chats'
        # queues; filing takes the write lock, so the sends found are started first.
        if started < room and await self._storage.file_alerts(self._clock()):
            started += await self._start_chats(self._clock(), room - started)
        return started

    async def _start_chats(self, now: datetime, room: int) -> int:
        chats = await self._storage.pending_chats(now, room, skip_chats=self._in_flight.keys())
        rows = await self._storage.pending_messages(
            now, room * MAX_BATCH, chats=chats, per_chat=MAX_BATCH
        )
        by_chat: dict[int, list[PendingMessage]] = {}
        for row in rows:
            if row.id not in self._unrecorded:
                by_chat.setdefault(row.chat_id, []).append(row)
        started = 0
        for chat_id, chat_rows in by_chat.items():
            if started == room:
                break
            task = asyncio.create_task(self._deliver(chat_rows), name=f"send to {chat_id}")
            self._in_flight[chat_id] = task
            task.add_done_callback(functools.partial(self._done, chat_id))
            started += 1
        return started

    def _done(self, chat_id: int, _task: asyncio.Task[int]) -> None:
        self._in_flight.pop(chat_id, None)
        self._ready.set()

    async def _deliver(self, rows: list[PendingMessage]) -> int:
        """Send the next message of one chat and record the outcome; rows accepted.

        Whatever goes wrong, nothing is lost (unsent rows stay pending) and nothing loops:
        a failure to send is retried with back-off, a failure to record stalls the worker.
        """
        with log_context(chat_id=rows[0].chat_id):  # its records name the chat (JSON logs)
            return await self._deliver_to_chat(rows)

    async def _deliver_to_chat(self, rows: list[PendingMessage]) -> int:
        chat_id = rows[0].chat_id
        carried = rows[:1]
        try:
            subscriber = await self._storage.get_subscriber(chat_id)
            view = chat_view(subscriber, self._catalog, self._tz, self._clock())
            if rows[0].kind == "alert" and view.held_until is not None:
                return await self._hold(chat_id, view.held_until, carried)
            batch = self._batch and rows[0].id not in self._alone
            text, carried = next_message(
                rows, view.texts, view.tz, batch=batch, fingerprints=self._fingerprints
            )
            if carried[0].media == MEDIA_CHART:
                result = await self._send_chart(chat_id, text)
            elif not text.strip():
                result = SendResult("rejected", NOTHING_TO_SEND)
            else:
                previews = view.previews and carried[0].kind == "alert"
                result = await self._timed(self._sender.send(chat_id, text, previews=previews))
        except Exception as exc:  # a bug in rendering or sending: retried later, not now
            log.exception("could not send to chat %d", chat_id)
            result = SendResult("retry", f"{type(exc).__name__}: {exc}")
        try:
            accepted = await self._record(chat_id, carried, result)
        except Exception as exc:
            self._cannot_record(carried, result, exc)
            return len(carried) if result.status == "sent" else 0
        self._record_failures = 0
        return accepted

    async def _send_chart(self, chat_id: int, payload: str) -> SendResult:
        try:
            png, caption = await draw_chart_async(payload)
        except BadChart as exc:  # drawing it again would fail again: set aside
            log.warning("chart for chat %d set aside: %s", chat_id, exc)
            return SendResult("rejected", str(exc))
        return await self._timed(self._sender.send_photo(chat_id, png, caption))

    async def _timed(self, sending: Awaitable[SendResult]) -> SendResult:
        """A send, its latency observed when Telegram accepted it."""
        started = time.monotonic()
        result = await sending
        if result.status == "sent":
            self._metrics.send_seconds.observe(time.monotonic() - started)
        return result

    def _count_sent(self, carried: list[PendingMessage]) -> None:
        self.sent += len(carried)
        self._metrics.outbox_messages.inc()
        for row in carried:
            self._metrics.outbox_sent.labels(row.kind).inc()

    async def _hold(self, chat_id: int, until: datetime, carried: list[PendingMessage]) -> int:
        """The chat is muted or quiet: postpone all its alerts to `until`, counting no
        attempt, so it is not picked again before then (and stalls no one else)."""
        try:
            held = await self._storage.hold_alerts(chat_id, until)
        except Exception as exc:
            self._cannot_record(carried, SendResult("retry", "cannot hold alerts"), exc)
            return 0
        log.info("chat %d is muted or quiet: %d alert(s) held until %s", chat_id, held, until)
        return 0

    def _cannot_record(
        self, carried: list[PendingMessage], result: SendResult, exc: Exception
    ) -> None:
        """The database refused the outcome of a send: remember it and pause sending."""
        ids = [row.id for row in carried]
        if result.status == "sent":
            self._unrecorded.update(ids)
            self._count_sent(carried)
        if self._stalled_until is None:  # sends in flight together fail together: once
            self._record_failures = 1
            self._stalled_until = asyncio.get_running_loop().time() + STALL_FIRST
            log.critical(
                "cannot record sent messages in the database (%s: %s); sending is paused"
                " until it can (is the disk full?)",
                type(exc).__name__,
                exc,
            )
            self._raise_alarm("alarm-cannot-record", error=f"{type(exc).__name__}: {exc}")

    def _raise_alarm(self, key: str, **args: Argument) -> None:
        if self._alarm is None:
            return
        task = asyncio.create_task(self._alarm(key, **args), name="outbox alarm")
        self._alarms.add(task)
        task.add_done_callback(self._alarm_done)

    def _alarm_done(self, task: asyncio.Task[None]) -> None:
        self._alarms.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not raise the alarm: %s", task.exception())

    async def _wait_out_stall(self) -> None:
        """Sleep until the stall's retry time (or a stop), then try to record again."""
        assert self._stalled_until is not None
        wait = self._stalled_until - asyncio.get_running_loop().time()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._stop.wait()
        if self._stop.is_set():
            return
        await self.try_recover()

    async def try_recover(self) -> bool:
        """Record what was sent meanwhile; on success, sending resumes. False if still stuck."""
        if self._in_flight:
            # Outcomes still arriving would be recorded (or fail) on their own.
            await asyncio.wait(list(self._in_flight.values()))
        ids = sorted(self._unrecorded)
        try:
            if ids:
                await self._storage.mark_sent(ids)
            else:  # nothing to record: prove the database takes writes before sending on
                await self._storage.check_writable()
        except Exception as exc:
            self._record_failures += 1
            delay = min(STALL_MAX, STALL_FIRST * 2 ** (self._record_failures - 1))
            self._stalled_until = asyncio.get_running_loop().time() + delay
            log.warning("still cannot record sent messages (%s); next try in %.0f s", exc, delay)
            return False
        self._unrecorded.difference_update(ids)
        self._stalled_until = None
        log.warning("the database takes writes again: %d sent message(s) recorded", len(ids))
        if ids:
            self._raise_alarm("alarm-sending-resumed", count=len(ids))
        return True

    async def _record(
        self, chat_id: int, carried: list[PendingMessage], result: SendResult
    ) -> int:
        """Write the outcome of a send; raises when the database refuses the write."""
        ids = [row.id for row in carried]
        if result.status == "sent":
            await self._storage.mark_sent(ids)
            self._alone.difference_update(ids)
            self._count_sent(carried)
            return len(ids)
        moved_to = result.moved_to if result.status == "moved" else None
        if moved_to is not None and moved_to != chat_id:
            await self._moved(chat_id, moved_to)
        elif result.status == "blocked":
            await self._storage.deactivate_subscriber(chat_id)
            dropped = await self._storage.set_aside_chat(chat_id, BLOCKED)
            self._metrics.outbox_set_aside.labels("blocked").inc(dropped)
            log.info(
                "chat %d blocked the bot (%s): marked inactive, %d message(s) set aside",
                chat_id,
                result.reason,
                dropped,
            )
        elif result.reason == NOTHING_TO_SEND:
            await self._storage.set_aside(ids, NOTHING_TO_SEND)
            self._metrics.outbox_set_aside.labels("empty").inc(len(ids))
        elif result.status in ("rejected", "moved"):  # "moved" nowhere: as good as refused
            if len(ids) > 1:
                # One of the alerts may hold what Telegram refuses: send them one by one.
                log.warning("Telegram refused a batch for chat %d: %s", chat_id, result.reason)
                self._alone.update(ids)
            else:
                log.error(
                    "Telegram rejected message %d to chat %d: %s", ids[0], chat_id, result.reason
                )
                await self._storage.set_aside(ids, result.reason)
                self._metrics.outbox_set_aside.labels("rejected").inc()
                self._alone.difference_update(ids)
        else:
            delay = result.delay or retry_delay(max(row.attempts for row in carried))
            log.warning("message to chat %d: %s; retrying in %.0fs", chat_id, result.reason, delay)
            until = self._clock() + timedelta(seconds=delay)
            await self._storage.postpone(ids, until, result.reason)
            self._metrics.outbox_retried.inc(len(ids))
        return 0

    async def _moved(self, chat_id: int, new_id: int) -> None:
        """The group became a supergroup: move the chat (its rows keep their attempts and
        are due as they were, so the next pass sends them to the new id), then let
        `on_moved` follow. Moved already (the service message came first): nothing to do.
        A failure of `on_moved` is logged; the move stands."""
        if not await self._storage.move_chat(chat_id, new_id):
            log.info("chat %d became supergroup %d: moved already", chat_id, new_id)
            return
        log.info("chat %d became supergroup %d: moved, its messages go there", chat_id, new_id)
        if self._on_moved is None:
            return
        try:
            await self._on_moved(chat_id, new_id)
        except Exception:
            log.exception("chat %d moved to %d, but following the move failed", chat_id, new_id)

    async def _finish(self, grace: float) -> None:
        tasks = list(self._in_flight.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            if pending:
                log.warning(
                    "%d send(s) did not finish in time; they stay in the outbox", len(pending)
                )
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        if self._unrecorded and not await self.try_recover():
            log.error(
                "%d sent message(s) could not be recorded; they will be sent again at the next"
                " start",
                len(self._unrecorded),
            )
        if self._alarms:
            await asyncio.wait(list(self._alarms), timeout=grace)
