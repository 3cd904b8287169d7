"""The outbox worker and sender against the stand-in Bot API: success and every error path."""

from __future__ import annotations

import asyncio
import gc
import re
import weakref
from datetime import UTC, datetime, timedelta

import pytest
from aiogram import Bot
from aiogram.methods import Response
from aiogram.types import Message

from bot.delivery.outbox import OutboxWorker
from bot.delivery.render import MAX_MESSAGE, html_length
from bot.delivery.sender import Pacer, Priority, TelegramSender, install_pacer, pacer_of
from bot.domain import Post, Span
from bot.folding import Fingerprint, Fingerprints
from bot.storage import Storage
from bot.storage.sqlite import MatchRecord
from tests.botapi import FakeBotAPI
from tests.conftest import USER

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _fast() -> Pacer:
    return Pacer(rate=1000, private_interval=0.0, group_interval=0.0)


def _worker(
    storage: Storage, bot: Bot, *, timeout: int = 30, ready: asyncio.Event | None = None
) -> OutboxWorker:
    sender = TelegramSender(bot, _fast(), timeout=timeout)
    return OutboxWorker(storage, sender, UTC, ready or asyncio.Event())


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
    await storage.file_alerts()  # into the chats' queues, as the sender does


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
    # The two alerts go as one message; refused, they are tried one by one: the first is
    # refused again (set aside with the reason), the second goes through.
    api.fail_next(
        "sendMessage", status=400, description="Bad Request: can't parse entities", times=2
    )
    worker = _worker(storage, bot)
    assert await worker.send_due() == 1
    assert await storage.outbox_counts() == {"pending": 0, "sent": 1, "failed": 1}
    assert await worker.send_due() == 0  # never retried in a loop
    assert len(api.sent_to(7)) == 1
    assert "t.me/milinfo/2" in api.sent_to(7)[0].text


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
    worker = _worker(storage, bot, ready=ready)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.05)
    await _alert(storage, 7, "1")
    ready.set()
    await api.wait_for_sent(1, timeout=30)
    worker.stop()
    await asyncio.wait_for(task, 30)


def _links(text: str) -> list[str]:
    return re.findall(r'href="https://t\.me/milinfo/(\d+)"', text)


async def test_a_burst_for_one_subscriber_is_one_message(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    for number in range(1, 6):
        await _alert(storage, 7, str(number), f"Oreshnik report {number}")
    await _alert(storage, 8, "6")
    assert await _worker(storage, bot).send_due() == 6
    (message,) = api.sent_to(7)
    assert "5 new matches" in message.text
    assert _links(message.text) == ["1", "2", "3", "4", "5"]  # oldest first, each kept
    assert message.text.count("<b>Oreshnik</b> report") == 5  # matches in bold in each
    assert len(api.sent_to(8)) == 1
    assert await storage.outbox_counts() == {"pending": 0, "sent": 6, "failed": 0}


async def test_reposts_waiting_together_go_out_as_one_alert_naming_the_other_sources(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    news = (
        "Минобороны сообщило о боевом дежурстве комплекса Oreshnik в Беларуси."
        " Первые пусковые установки прибыли в расположение части в конце ноября."
    )
    await _alert(storage, 7, "1", news)
    await _alert(storage, 7, "2", f"⚡️ {news}\n\nПодписаться: @milinfolive")
    await _alert(storage, 7, "3", f"{news} https://t.me/rybar/123")
    await _alert(storage, 7, "4", "Oreshnik: an analysis of the launcher's range, in detail.")
    for post_id, title in (("2", "Военный Осведомитель"), ("3", "Рыбарь")):
        async with storage._transaction() as db:
            await db.execute(
                "UPDATE posts SET channel_title = ? WHERE post_id = ?", (title, post_id)
            )
    assert await _worker(storage, bot).send_due() == 4
    (message,) = api.sent_to(7)
    assert "2 new matches" in message.text  # the story once, and the other post
    assert "also in Военный Осведомитель, Рыбарь" in message.text
    assert _links(message.text) == ["1", "4"]
    assert await storage.outbox_counts() == {"pending": 0, "sent": 4, "failed": 0}


async def test_a_post_alerted_to_many_chats_is_fingerprinted_once(
    storage: Storage, api: FakeBotAPI, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    news = "Минобороны сообщило о боевом дежурстве комплекса Oreshnik в Беларуси, в конце ноября."
    chats = [7, 8, 9]
    await _alert(storage, chats, "1", news)
    await _alert(storage, chats, "2", f"⚡️ {news}\n\nПодписаться: @milinfolive")
    made: list[str] = []
    make = Fingerprints.make

    def counting(self: Fingerprints, text: str) -> Fingerprint:
        made.append(text)
        return make(self, text)

    monkeypatch.setattr(Fingerprints, "make", counting)
    assert await _worker(storage, bot).send_due() == 6
    for chat_id in chats:
        (message,) = api.sent_to(chat_id)
        assert "+1 similar post" in message.text  # the repost folded, in every chat
    assert len(made) == 2  # one fingerprint per post, not per chat


async def test_reply_types_outlive_garbage_collection(api: FakeBotAPI, bot: Bot) -> None:
    """aiogram parses each reply with a pydantic generic class that only a weak cache holds;
    rebuilt after every collection, it cost ~5 ms per message (bot/delivery/responses.py)."""
    gc.disable()  # the class the reply was parsed with is still cached right after it
    try:
        await bot.send_message(USER, "one")
        parsed_with = weakref.ref(Response[Message])
    finally:
        gc.enable()
    gc.collect()
    assert parsed_with() is not None
    await bot.send_message(USER, "two")
    assert Response[Message] is parsed_with()


async def test_long_bursts_are_cut_into_messages_within_the_limit(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    for number in range(1, 31):
        # ~4,300 characters each, and each a different post (the same text would fold).
        words = " ".join(f"🚀 пост{number}x{i} <тег> & текст" for i in range(140))
        await _alert(storage, 7, str(number), f"Oreshnik {words}")
    assert await _worker(storage, bot).send_due() == 30
    messages = api.sent_to(7)
    assert len(messages) > 1
    # The stand-in server refuses anything over 4096 characters or with bad HTML, so every
    # message got through intact; together they carry each alert once, in order.
    assert [link for m in messages for link in _links(m.text)] == [str(n) for n in range(1, 31)]
    assert all(html_length(m.text) <= MAX_MESSAGE for m in messages)


async def test_order_is_kept_across_alerts_and_digests(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    await _alert(storage, 7, "1")
    await storage.queue_digest(7, ["<b>Digest</b> one"], NOW)
    await _alert(storage, 7, "2")
    await _alert(storage, 7, "3")
    assert await _worker(storage, bot).send_due() == 4
    texts = [m.text for m in api.sent_to(7)]
    assert _links(texts[0]) == ["1"]
    assert "Digest" in texts[1]
    assert _links(texts[2]) == ["2", "3"]


async def test_a_blocked_chat_gets_nothing_more_until_start(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    await _alert(storage, 7, "1")
    api.block_chat(7)
    assert await _worker(storage, bot).send_due() == 0
    assert await storage.outbox_counts() == {"pending": 0, "sent": 0, "failed": 1}
    # A match while blocked is stored but not queued: no flood of stale alerts after /start.
    (subscription,) = await storage.subscriptions_of(7)
    record = MatchRecord(subscription.id, 7, "Oreshnik", ())
    await storage.save_post(Post("jsonl", "milinfo", "2", NOW, "Oreshnik"), [record])
    assert await storage.outbox_counts() == {"pending": 0, "sent": 0, "failed": 1}
    await storage.upsert_subscriber(7, "user")  # /start
    api.unblock_chat(7)
    await _alert(storage, 7, "3")
    assert await _worker(storage, bot).send_due() == 1
    assert [_links(m.text) for m in api.sent_to(7)] == [["3"]]


async def test_retry_after_holds_only_that_chat(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    await _alert(storage, [7, 8], "1")
    api.fail_next(
        "sendMessage", status=429, description="Too Many Requests", retry_after=5, chat_id=7
    )
    worker = _worker(storage, bot)
    assert await worker.send_due() == 1
    assert [m.chat_id for m in api.sent] == [8]
    pacer = pacer_of(bot)
    assert pacer is not None
    assert 4 < pacer.busy_until(7) <= 5
    assert pacer.busy_until(8) < 1


async def test_429s_for_two_chats_pause_everything(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    await _alert(storage, [7, 8, 9], "1")
    api.fail_next(
        "sendMessage", status=429, description="Too Many Requests", retry_after=2, times=2
    )
    worker = OutboxWorker(
        storage, TelegramSender(bot, _fast()), UTC, asyncio.Event(), concurrency=1
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await worker.send_due() == 3  # each once, in the end
    # Chat 9 had no limit of its own; it waited because Telegram throttled the whole bot.
    assert api.sent[0].chat_id == 9
    assert loop.time() - started > 1.5
    assert sorted(m.chat_id for m in api.sent) == [7, 8, 9]


async def test_shutdown_is_bounded_and_loses_nothing(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    await _alert(storage, [7, 8], "1")
    api.set_delay(20)  # Telegram hangs
    worker = _worker(storage, bot)
    task = asyncio.create_task(worker.run(grace=0.3))
    await asyncio.sleep(0.3)
    worker.stop()
    await asyncio.wait_for(task, 15)  # returns after the grace, not after 20 s
    assert await storage.outbox_counts() == {"pending": 2, "sent": 0, "failed": 0}
    api.set_delay(0)
    assert await _worker(storage, bot).send_due() == 2  # the next start sends them


async def test_pacer_grants_every_waiting_send_in_each_chats_order() -> None:
    # The spacing itself is checked on a fake clock (tests/test_pacer.py); measured here it
    # would be the moment each coroutine resumed, which a loaded machine compresses.
    pacer = Pacer(rate=50, private_interval=0.2, group_interval=0.3)
    granted: list[tuple[int, int]] = []

    async def take(chat_id: int, n: int) -> None:
        await pacer.acquire(chat_id)
        granted.append((chat_id, n))

    chats = [1, 1, 1, 2, 3, 4, -5, -5]
    await asyncio.wait_for(asyncio.gather(*(take(c, n) for n, c in enumerate(chats))), 60)
    assert sorted(granted) == sorted((c, n) for n, c in enumerate(chats))
    for chat in (1, -5):
        own = [n for c, n in granted if c == chat]
        assert own == sorted(own)


async def test_replies_go_ahead_of_bulk_alerts() -> None:
    pacer = Pacer(rate=20)
    order: list[str] = []

    async def take(name: str, chat_id: int, priority: Priority) -> None:
        await pacer.acquire(chat_id, priority)
        order.append(name)

    bulk = [asyncio.create_task(take(f"alert{n}", 100 + n, Priority.BULK)) for n in range(6)]
    for _ in range(6000):  # until a couple of alerts are through (a generous bound)
        if len(order) >= 2:
            break
        await asyncio.sleep(0.01)
    through = len(order)  # nothing is granted between this check and the reply's request
    await take("reply", 1, Priority.REPLY)
    await asyncio.gather(*bulk)
    # The next free slot (one more alert may have been granted, not yet resumed), not
    # after the remaining alerts.
    assert order.index("reply") <= through + 1
    assert order.index("reply") < len(order) - 2


async def test_command_replies_are_paced_by_the_same_pacer(api: FakeBotAPI, bot: Bot) -> None:
    pacer = install_pacer(bot, Pacer(rate=1000, private_interval=0.3))
    assert pacer_of(bot) is pacer
    assert install_pacer(bot) is pacer  # installed once
    loop = asyncio.get_running_loop()
    started = loop.time()
    await bot.send_message(7, "first reply")
    await bot.send_message(7, "second reply")  # what message.answer() does in a handler
    assert loop.time() - started >= 0.29
    await bot.get_me()  # not a message: not paced
    assert [m.text for m in api.sent_to(7)] == ["first reply", "second reply"]


async def test_an_alert_behind_a_postponed_one_waits_with_it_and_a_digest_does_not(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    # A chat's alerts are one queue (kept in order), its digests another: a new alert
    # behind a postponed one is not due (nor does it make the worker look again at once),
    # while a digest goes out.
    await _alert(storage, 7, "1")
    postponed = datetime.now(UTC) + timedelta(hours=1)
    await storage.postpone(1, postponed, "Bad Gateway")  # a failed send, retried in an hour
    await _alert(storage, 7, "2")
    assert await storage.next_attempt_at() == postponed
    assert await storage.pending_chats(datetime.now(UTC), 10) == []
    await storage.queue_digest(7, ["<b>Digest</b> one"], NOW)
    assert await storage.pending_chats(datetime.now(UTC), 10) == [7]
    assert await _worker(storage, bot).send_due() == 1
    assert [m.text for m in api.sent_to(7)] == ["<b>Digest</b> one"]
    assert await storage.outbox_counts() == {"pending": 2, "sent": 1, "failed": 0}


async def test_a_digest_chart_goes_out_as_a_photo_after_the_digest(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    from datetime import date

    from bot.chart import ChartData, Series
    from bot.digest import chart_payload
    from bot.i18n import Catalog
    from bot.storage import QueuedDigest

    t = Catalog(strict=True).texts("en")
    days = tuple(date(2026, 11, 15) + timedelta(days=n) for n in range(14))
    data = ChartData(days, (Series("Oreshnik", tuple(range(14))),))
    chart = chart_payload(data, t, caption="📈 the caption")
    await storage.upsert_subscriber(7, "user")
    await storage.upsert_subscriber(8, "user")
    await storage.queue_digests(
        [
            QueuedDigest(7, ("<b>Digest</b> one",), NOW, chart),
            QueuedDigest(8, ("<b>Digest</b> two",), NOW, '{"days": "not a chart"}'),
        ]
    )
    assert await _worker(storage, bot).send_due() == 3
    text, photo = api.sent_to(7)
    assert text.text == "<b>Digest</b> one"
    assert (photo.method.lower(), photo.caption) == ("sendphoto", "📈 the caption")
    assert photo.file is not None
    assert photo.file.startswith(b"\x89PNG")
    # Chart data that cannot be read is set aside, never retried; the digest itself went.
    assert [m.text for m in api.sent_to(8)] == ["<b>Digest</b> two"]
    assert await storage.outbox_counts() == {"pending": 0, "sent": 3, "failed": 1}
