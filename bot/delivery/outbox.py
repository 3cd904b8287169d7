"""The outbox worker: sends queued alerts and digests; a row is marked sent only after Telegram
accepted it, so a crash at any moment loses nothing (at most the in-flight message repeats)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta, tzinfo

from bot.delivery.render import render_alert
from bot.delivery.sender import Sender, Status
from bot.storage import PendingMessage, Storage

log = logging.getLogger(__name__)

IDLE_CHECK = 5.0  # seconds; a safety net — new alerts wake the worker at once
MAX_RETRY_DELAY = 600.0


def retry_delay(attempts: int) -> float:
    """Back-off for transient failures: 2, 4, 8 ... seconds, capped at ten minutes."""
    return float(min(MAX_RETRY_DELAY, 2 ** (attempts + 1)))


def render_message(message: PendingMessage, tz: tzinfo) -> str:
    """The HTML to send for an outbox row."""
    if message.kind == "alert" and message.post is not None:
        return render_alert(message.post, message.queries, message.spans, tz)
    return message.text or ""


class OutboxWorker:
    """Drains the outbox in order; woken by `ready` as soon as ingest queues something."""

    def __init__(self, storage: Storage, sender: Sender, tz: tzinfo, ready: asyncio.Event) -> None:
        self._storage = storage
        self._sender = sender
        self._tz = tz
        self._ready = ready
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Finish the message in flight, then return from `run`."""
        self._stop.set()
        self._ready.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            self._ready.clear()
            await self.send_due()
            if self._stop.is_set():
                break
            wait = IDLE_CHECK
            due = await self._storage.next_attempt_at()
            if due is not None:
                wait = min(wait, max(0.05, (due - datetime.now(UTC)).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout=wait)

    async def send_due(self) -> int:
        """Send every message due now; returns how many were accepted by Telegram."""
        sent = 0
        while not self._stop.is_set():
            batch = await self._storage.pending_messages(datetime.now(UTC))
            if not batch:
                break
            held: set[int] = set()  # chats told to wait: keep their later messages in order
            for message in batch:
                if self._stop.is_set():
                    break
                if message.chat_id in held:
                    continue
                status = await self._send_one(message)
                if status == "sent":
                    sent += 1
                elif status in ("retry", "blocked"):
                    held.add(message.chat_id)
        return sent

    async def _send_one(self, message: PendingMessage) -> Status:
        """Send one row and record the outcome; every outcome changes the row's state."""
        text = render_message(message, self._tz)
        if not text.strip():
            await self._storage.set_aside(message.id, "nothing to send")
            return "rejected"
        result = await self._sender.send(message.chat_id, text)
        if result.status == "sent":
            await self._storage.mark_sent(message.id)
            return "sent"
        if result.status == "blocked":
            log.info(
                "chat %d blocked the bot (%s); marked inactive", message.chat_id, result.reason
            )
            await self._storage.deactivate_subscriber(message.chat_id)
        elif result.status == "rejected":
            log.error(
                "Telegram rejected message %d to chat %d: %s",
                message.id,
                message.chat_id,
                result.reason,
            )
            await self._storage.set_aside(message.id, result.reason)
        else:
            delay = result.delay or retry_delay(message.attempts)
            log.warning(
                "message %d to chat %d: %s; retrying in %.0fs",
                message.id,
                message.chat_id,
                result.reason,
                delay,
            )
            until = datetime.now(UTC) + timedelta(seconds=delay)
            await self._storage.postpone(message.id, until, result.reason)
        return result.status
