"""A group that becomes a supergroup gets a new chat id: Dozor moves the chat (settings,
queries, matches, waiting alerts) to it, whether it learns so from a refused send or from
the service messages in the old group and the new supergroup."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot

from bot.config import Settings
from bot.delivery.outbox import OutboxWorker
from bot.delivery.sender import Pacer, TelegramSender
from bot.domain import MODE_DIGEST, Post, Span
from bot.ingest import Ingest, Matcher
from bot.storage import SqliteStorage, Storage
from bot.storage.sqlite import MatchRecord
from tests.botapi import GROUP_ANONYMOUS_BOT_ID, FakeBotAPI
from tests.test_groups import ADMIN, BOT, in_order

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
OLD = -4_500_100  # a basic group ...
NEW = -1_004_500_100  # ... and the supergroup it became
UPGRADED = "Bad Request: group chat was upgraded to a supergroup chat"
_message_ids = itertools.count(9_001)


@pytest.fixture(params=[True, False], ids=["foreign keys on", "foreign keys off"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """Storage as the service opens it, and (to be safe either way) with foreign keys off."""
    storage = await SqliteStorage.open(tmp_path / "dozor.sqlite3")
    if not request.param:
        await storage._db.execute("PRAGMA foreign_keys = OFF")
    async with storage._db.execute("PRAGMA foreign_keys") as cursor:
        assert (await cursor.fetchone())[0] == int(request.param)
    yield storage
    await storage.close()


def _post(post_id: str, text: str = "Oreshnik launched") -> Post:
    return Post("jsonl", "milinfo", post_id, NOW, text, f"https://t.me/milinfo/{post_id}")


async def _subscribe(storage: Storage, chat_id: int, query: str, **options: Any) -> MatchRecord:
    subscription = await storage.add_subscription(chat_id, query, **options)
    assert subscription is not None
    return MatchRecord(subscription.id, chat_id, query, (Span(0, len(query)),))


async def _group(storage: Storage, chat_id: int = OLD) -> None:
    await storage.upsert_subscriber(chat_id, "Arms Control Desk", kind="group", tg_language="ru")


def _outbox(path: Path) -> list[tuple[int, int, int, bool, bool]]:
    """(id, chat, attempts, sent, set aside) of every outbox row, read beside the service."""
    with contextlib.closing(sqlite3.connect(path)) as raw:
        rows = raw.execute(
            "SELECT id, chat_id, attempts, sent_at IS NOT NULL, failed_at IS NOT NULL"
            " FROM outbox ORDER BY id"
        ).fetchall()
    return [(int(a), int(b), int(c), bool(d), bool(e)) for a, b, c, d, e in rows]


async def _orphans(storage: Storage) -> list[Any]:
    async with storage._db.execute("PRAGMA foreign_key_check") as cursor:
        return list(await cursor.fetchall())


# --- storage --------------------------------------------------------------------------


async def test_the_chat_moves_whole_and_only_once(db: Storage) -> None:
    await _group(db)
    await db.update_subscriber(
        OLD,
        language="ru",
        timezone="Europe/Moscow",
        digest_time="07:30",
        digest_enabled=False,
        quiet_start="23:00",
        quiet_end="07:00",
        link_previews=True,
        introduced_at=NOW,
    )
    before = await db.get_subscriber(OLD)
    assert before is not None
    oreshnik = await _subscribe(db, OLD, "Oreshnik")
    iskander = await _subscribe(db, OLD, "Iskander", mode=MODE_DIGEST)
    kinzhal = await _subscribe(db, OLD, "Kinzhal")
    await db.update_subscription(kinzhal.subscription_id, paused=True)
    await db.save_post(_post("1"), [oreshnik])
    await db.save_post(_post("2", "Iskander and Oreshnik"), [oreshnik, iskander])
    (first, second) = await db.pending_messages(datetime.now(UTC))
    await db.mark_sent(first.id)  # history: stays the old chat's
    await db.postpone(second.id, datetime.now(UTC), "a hiccup")  # one attempt counted
    await db.queue_digest(OLD, ["<b>Digest</b>"], NOW)

    assert await db.move_chat(OLD, NEW)

    assert await db.get_subscriber(OLD) is None
    assert await db.subscriptions_of(OLD) == []
    after = await db.get_subscriber(NEW)
    assert after is not None
    assert after.kind == "supergroup"
    assert (after.name, after.active, after.created_at) == (before.name, True, before.created_at)
    for setting in (
        "language",
        "tg_language",
        "timezone",
        "digest_time",
        "digest_enabled",
        "quiet_start",
        "quiet_end",
        "link_previews",
        "introduced_at",
    ):
        assert getattr(after, setting) == getattr(before, setting), setting
    moved = await db.subscriptions_of(NEW)
    assert [(s.id, s.query, s.mode, s.paused) for s in moved] == [
        (oreshnik.subscription_id, "Oreshnik", "both", False),
        (iskander.subscription_id, "Iskander", MODE_DIGEST, False),
        (kinzhal.subscription_id, "Kinzhal", "both", True),
    ]
    assert {s.chat_id for s in await db.active_subscriptions()} == {NEW}
    entries = await db.digest_entries(NEW, NOW - timedelta(days=1), datetime.now(UTC))
    assert [(e.post.post.post_id, e.queries) for e in entries] == [
        ("1", ("Oreshnik",)),
        ("2", ("Oreshnik", "Iskander")),
    ]
    waiting = await db.pending_messages(datetime.now(UTC) + timedelta(hours=1))
    assert [(m.id, m.kind, m.chat_id, m.attempts) for m in waiting] == [
        (second.id, "alert", NEW, 1),
        (second.id + 1, "digest", NEW, 0),
    ]
    counts = {"pending": 2, "sent": 1, "failed": 0}
    assert await db.outbox_counts() == counts
    assert await _orphans(db) == []

    # Again, or a chat never seen: nothing to move, nothing changes.
    assert not await db.move_chat(OLD, NEW)
    assert not await db.move_chat(-77, NEW)
    assert not await db.move_chat(NEW, NEW)
    assert await db.get_subscriber(NEW) == after
    assert await db.subscriptions_of(NEW) == moved
    assert await db.outbox_counts() == counts


async def test_into_a_supergroup_already_known_nothing_is_doubled(db: Storage) -> None:
    await _group(db)
    await db.update_subscriber(OLD, language="ru", timezone="Europe/Moscow")
    old_oreshnik = await _subscribe(db, OLD, "Oreshnik")
    old_iskander = await _subscribe(db, OLD, "Iskander")
    await db.upsert_subscriber(NEW, "Arms Control Desk", kind="supergroup")
    await db.update_subscriber(NEW, timezone="Europe/Berlin")
    new_oreshnik = await _subscribe(db, NEW, "Oreshnik")
    # Post 1 matched both chats' Oreshnik (an alert waits for each); post 2 the old Iskander.
    await db.save_post(_post("1"), [old_oreshnik, new_oreshnik])
    await db.save_post(_post("2", "Iskander"), [old_iskander])

    assert await db.move_chat(OLD, NEW)

    merged = await db.get_subscriber(NEW)
    assert merged is not None
    assert (merged.timezone, merged.language) == ("Europe/Berlin", "ru")  # its own kept
    assert [(s.id, s.query) for s in await db.subscriptions_of(NEW)] == [
        (old_iskander.subscription_id, "Iskander"),
        (new_oreshnik.subscription_id, "Oreshnik"),
    ]
    entries = await db.digest_entries(NEW, NOW - timedelta(days=1), datetime.now(UTC))
    assert [(e.post.post.post_id, e.queries) for e in entries] == [
        ("1", ("Oreshnik",)),
        ("2", ("Iskander",)),
    ]
    waiting = await db.pending_messages(datetime.now(UTC))
    assert [(m.chat_id, m.post.post.post_id if m.post else None) for m in waiting] == [
        (NEW, "1"),
        (NEW, "2"),
    ]
    # The old chat's copy of the alert on post 1 is set aside, not sent twice.
    assert await db.outbox_counts() == {"pending": 2, "sent": 0, "failed": 1}
    assert await db.get_subscriber(OLD) is None
    assert await _orphans(db) == []
    assert not await db.move_chat(OLD, NEW)


async def test_a_post_matched_by_the_old_index_alerts_the_new_chat(db: Storage) -> None:
    """Matching runs off the event loop: a post matched just before the move names the old
    chat; its match and alert go to the chat that has the query now."""
    await _group(db)
    stale = await _subscribe(db, OLD, "Oreshnik")
    assert await db.move_chat(OLD, NEW)
    saved = await db.save_post(_post("1"), [stale])
    assert saved.alerts_queued == 1
    (alert,) = await db.pending_messages(datetime.now(UTC))
    assert alert.chat_id == NEW
    entries = await db.digest_entries(NEW, NOW - timedelta(days=1), datetime.now(UTC))
    assert [e.post.post.post_id for e in entries] == ["1"]


# --- delivery -------------------------------------------------------------------------


async def test_alerts_for_the_old_group_reach_the_supergroup_once(
    storage: Storage, api: FakeBotAPI, bot: Bot, matcher: Matcher, tmp_path: Path
) -> None:
    await _group(storage)
    match = await _subscribe(storage, OLD, "Oreshnik")
    await storage.save_post(_post("1"), [match])
    await storage.save_post(_post("2", "Oreshnik again"), [match])
    await matcher.refresh()
    api.migrate_chat(OLD, NEW)
    moves: list[tuple[int, int]] = []

    async def follow(old: int, new: int) -> None:
        moves.append((old, new))
        await matcher.refresh()

    ready = asyncio.Event()
    sender = TelegramSender(bot, Pacer(rate=1000, private_interval=0.0, group_interval=0.0))
    worker = OutboxWorker(storage, sender, UTC, ready, on_moved=follow)

    assert await worker.send_due() == 2
    refused = [r for r in api.rejected if r.params.get("chat_id") == str(OLD)]
    assert [(r.status, r.description) for r in refused] == [(400, UPGRADED)]
    assert api.sent_to(OLD) == []
    (message,) = api.sent_to(NEW)  # both alerts, together, once
    assert "t.me/milinfo/1" in message.text
    assert "t.me/milinfo/2" in message.text
    assert moves == [(OLD, NEW)]
    # The refusal counted no attempt: each row counts one, the send that went through.
    path = tmp_path / "dozor.sqlite3"
    assert [(chat, attempts, sent) for _, chat, attempts, sent, _ in _outbox(path)] == [
        (NEW, 1, True),
        (NEW, 1, True),
    ]

    # A post matched afterwards is alerted to the supergroup.
    saved = await Ingest(storage, matcher, ready).handle(_post("3", "Oreshnik, third"))
    assert saved.alerts_queued == 1
    assert await worker.send_due() == 1
    assert "t.me/milinfo/3" in api.sent_to(NEW)[-1].text
    assert api.sent_to(OLD) == []
    assert len(refused) == len([r for r in api.rejected if r.params.get("chat_id") == str(OLD)])
    assert await worker.send_due() == 0  # nothing is sent twice
    assert await storage.outbox_counts() == {"pending": 0, "sent": 3, "failed": 0}


# --- the service messages -------------------------------------------------------------


def _push_notice(api: FakeBotAPI, chat_id: int, user_id: int | None, **field: int) -> None:
    """A service message Telegram posts when a group is upgraded: `migrate_to_chat_id` in
    the old group, from whoever upgraded it; `migrate_from_chat_id` in the supergroup, on
    behalf of the supergroup itself (`user_id` None)."""
    message: dict[str, Any] = {
        "message_id": next(_message_ids),
        "chat": api.chat(chat_id),
        "date": int(time.time()),
        **field,
    }
    if user_id is None:
        message["from"] = {
            "id": GROUP_ANONYMOUS_BOT_ID,
            "is_bot": True,
            "first_name": "Group",
            "username": "GroupAnonymousBot",
        }
        message["sender_chat"] = api.chat(chat_id)
    else:
        message["from"] = {"id": user_id, "is_bot": False, "first_name": "Admin"}
    api.push_update({"message": message})


@pytest.mark.parametrize("first", ["old group", "supergroup"])
async def test_the_upgrade_notices_move_the_group_in_silence(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher, first: str
) -> None:
    api.add_chat(OLD, "group", title="Arms Control Desk")
    api.set_member(OLD, ADMIN, "administrator")
    async with in_order(storage, matcher, bot):
        api.push_my_chat_member(OLD, chat_type="group", by_user_id=ADMIN)
        await api.wait_for_sent(1, chat_id=OLD)  # the introduction
        reply = await api.say(OLD, f"/subscribe{BOT} Iskander", user_id=ADMIN, chat_type="group")
        assert "Subscribed" in reply
        assert [h.subscription.chat_id for h in await matcher.find("Iskander fired")] == [OLD]
        said_in_old = len(api.sent_to(OLD))

        api.add_chat(NEW, "supergroup", title="Arms Control Desk")
        api.set_member(NEW, ADMIN, "administrator")
        api.migrate_chat(OLD, NEW)
        notices = [
            (OLD, ADMIN, {"migrate_to_chat_id": NEW}),
            (NEW, None, {"migrate_from_chat_id": OLD}),
        ]
        for chat_id, user_id, field in notices if first == "old group" else notices[::-1]:
            _push_notice(api, chat_id, user_id, **field)
        # Handled in order: once a later command is answered, both notices were handled.
        await api.say(42, "/help")

        assert len(api.sent_to(OLD)) == said_in_old  # no reply to either notice
        assert api.sent_to(NEW) == []
        assert await storage.get_subscriber(OLD) is None
        group = await storage.get_subscriber(NEW)
        assert group is not None
        assert group.kind == "supergroup"
        assert group.introduced_at is not None  # introduced once ever: not again
        assert [s.query for s in await storage.subscriptions_of(NEW)] == ["Iskander"]
        assert [h.subscription.chat_id for h in await matcher.find("Iskander fired")] == [NEW]
        listing = await api.say(NEW, f"/list{BOT}", user_id=ADMIN, chat_type="supergroup")
        assert "Iskander" in listing


async def test_in_a_private_deployment_the_notice_gets_through_whoever_upgraded(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    """The upgrade is Telegram's bookkeeping, not a request: it is followed even when done
    by an administrator the deployment does not answer (and the old group, gone, cannot be
    asked who administers it)."""
    settings = Settings(_env_file=None, allowed_users=[ADMIN])  # type: ignore[call-arg]
    other_admin = 603
    await _group(storage)
    await _subscribe(storage, OLD, "Iskander")
    await matcher.refresh()
    api.add_chat(OLD, "group", title="Arms Control Desk")
    api.migrate_chat(OLD, NEW)
    api.fail_next("getChatAdministrators", status=400, description=UPGRADED, chat_id=OLD)
    async with in_order(storage, matcher, bot, settings):
        _push_notice(api, OLD, other_admin, migrate_to_chat_id=NEW)
        await api.say(ADMIN, "/help")
        assert [s.query for s in await storage.subscriptions_of(NEW)] == ["Iskander"]
        assert [h.subscription.chat_id for h in await matcher.find("Iskander fired")] == [NEW]
    assert not [r for r in api.rejected if r.params.get("chat_id") == str(OLD)]
