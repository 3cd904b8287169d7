"""The outbox worker and sender against the stand-in Bot API: success and every error path."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

from aiogram import Bot

from bot.delivery.outbox import OutboxWorker
from bot.delivery.sender import Pacer, TelegramSender
from bot.domain import Post, Span
from bot.storage import Storage
from bot.storage.sqlite import MatchRecord
from tests.botapi import FakeBotAPI

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
FAST = Pacer(rate=1000, private_interval=0.0, group_interval=0.0)


def _worker(storage: Storage, bot: Bot, *, timeout: int = 30) -> OutboxWorker:
    return OutboxWorker(storage, TelegramSender(bot, FAST, timeout=timeout), UTC, asyncio.Event())


async def _alert(
    storage: Storage, chats: int | list[int], post_id: str, text: str = "Oreshnik"
) -> None:
    """Store one post matched by the `Oreshnik` query of each chat, queueing their alerts."""
    matches = []
    for chat_id in [chats] if isinstance(chats, int) else chats:
        await storage.upsert_subscriber(chat_id, "user")
        await storage.add_subscription(chat_id, "Oreshnik")
        (subscription,) = await storage.subscriptions_of(chat_id)
        start = text.find("Oreshnik")
        spans = (Span(start, start + 8),) if start >= 0 else ()
        matches.append(MatchRecord(subscription.id, chat_id, "Oreshnik", spans))
    post = Post("jsonl", "milinfo", post_id, NOW, text, f"https://t.me/milinfo/{post_id}")
    await storage.save_post(post, matches)


async def test_alert_reaches_telegram_and_is_marked_sent(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    await _alert(storage, 7, "1", "Launch of <Oreshnik> & more")
    assert await _worker(storage, bot).send_due() == 1
    (message,) = api.sent_to(7)
    assert message.parse_mode == "HTML"
    assert "<b>Oreshnik</b>" in message.text
    assert "&lt;" in message.text
    assert "&amp;" in message.text
    assert 'href="https://t.me/milinfo/1"' in message.text
    assert await storage.outbox_counts() == {"pending": 0, "sent": 1, "failed": 0}
    assert await _worker(storage, bot).send_due() == 0  # nothing is sent twice


async def test_retry_after_postpones_and_sends_later_once(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    await _alert(storage, 7, "1")
    api.fail_next(
        "sendMessage", status=429, description="Too Many Requests: retry after 1", retry_after=1
    )
    worker = _worker(storage, bot)
    assert await worker.send_due() == 0
    assert (await storage.outbox_counts())["pending"] == 1
    due = await storage.next_attempt_at()
    assert due is not None
    assert due > datetime.now(UTC)
    await asyncio.sleep((due - datetime.now(UTC)).total_seconds() + 0.05)
    assert await worker.send_due() == 1
    assert len(api.sent_to(7)) == 1


async def test_blocked_chat_is_deactivated_and_others_still_served(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    await _alert(storage, [7, 8], "1")
    await _alert(storage, 7, "2")
    api.block_chat(7)
    assert await _worker(storage, bot).send_due() == 1
    subscriber = await storage.get_subscriber(7)
    assert subscriber is not None
    assert not subscriber.active
    assert [m.chat_id for m in api.sent] == [8]
    # Exactly one attempt was made to the blocked chat: no hammering.
    assert sum(1 for _, params in api.calls if params.get("chat_id") == "7") == 1
    assert [s.query for s in await storage.subscriptions_of(7)] == ["Oreshnik"]  # data kept


async def test_rejected_message_is_set_aside_with_reason(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    await _alert(storage, 7, "1")
    await _alert(storage, 7, "2")
    api.fail_next("sendMessage", status=400, description="Bad Request: can't parse entities")
    worker = _worker(storage, bot)
    assert await worker.send_due() == 1
    assert await storage.outbox_counts() == {"pending": 0, "sent": 1, "failed": 1}
    assert await worker.send_due() == 0  # never retried in a loop


async def test_server_errors_and_timeouts_are_retried(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    await _alert(storage, 7, "1")
    api.fail_next("sendMessage", status=502, description="Bad Gateway")
    assert await _worker(storage, bot).send_due() == 0
    api.set_unavailable(503)  # a proxy's non-JSON page
    await storage.postpone(1, datetime.now(UTC), "test: make it due now")
    assert await _worker(storage, bot).send_due() == 0
    api.set_unavailable(None)
    api.set_delay(3)
    await storage.postpone(1, datetime.now(UTC), "test: make it due now")
    assert await _worker(storage, bot, timeout=1).send_due() == 0
    api.set_delay(0)
    await storage.postpone(1, datetime.now(UTC), "test: make it due now")
    assert await _worker(storage, bot).send_due() == 1
    assert await storage.outbox_counts() == {"pending": 0, "sent": 1, "failed": 0}


async def test_worker_wakes_on_new_alert_and_stops_cleanly(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    ready = asyncio.Event()
    worker = OutboxWorker(storage, TelegramSender(bot, FAST), UTC, ready)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.05)
    await _alert(storage, 7, "1")
    ready.set()
    await api.wait_for_sent(1, timeout=5)
    worker.stop()
    await asyncio.wait_for(task, 5)


def test_pacer_spaces_sends_per_chat_and_globally() -> None:
    clock = [0.0]
    pacer = Pacer(rate=30, private_interval=1.0, group_interval=3.0, clock=lambda: clock[0])
    same_chat = [pacer.reserve(1) for _ in range(3)]
    assert same_chat == [0.0, 1.0, 2.0]
    many_chats = [pacer.reserve(100 + n) for n in range(30)]
    gaps = [b - a for a, b in itertools.pairwise(many_chats)]
    assert all(abs(gap - 1 / 30) < 1e-9 for gap in gaps)  # no burst: evenly spaced
    assert pacer.reserve(-5) < pacer.reserve(-5) - 2.9  # a group waits 3 s
    pacer.pause(None, 60)
    assert pacer.reserve(2) >= 60
