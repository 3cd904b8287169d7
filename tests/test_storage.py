"""Storage on a real SQLite file: idempotent ingest, edits, the outbox, migrations, FTS."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain import Post, Span
from bot.storage import SqliteStorage, Storage
from bot.storage.sqlite import MatchRecord

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _post(post_id: str = "1", text: str = "Oreshnik launched", channel: str = "ch") -> Post:
    return Post("jsonl", channel, post_id, NOW, text, f"https://t.me/{channel}/{post_id}")


async def _subscribe(storage: Storage, chat_id: int, query: str) -> MatchRecord:
    await storage.upsert_subscriber(chat_id, f"user {chat_id}")
    subscription = await storage.add_subscription(chat_id, query)
    assert subscription is not None
    return MatchRecord(subscription.id, chat_id, query, (Span(0, 8),))


async def test_migrations_create_schema_once(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    first = await SqliteStorage.open(path)
    await first.close()
    again = await SqliteStorage.open(path)  # applying migrations twice must be a no-op
    await again.close()
    with sqlite3.connect(path) as raw:
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
        mode = raw.execute("PRAGMA journal_mode").fetchone()[0]
        versions = raw.execute("SELECT version FROM schema_migrations").fetchall()
    assert {
        "sources",
        "posts",
        "posts_fts",
        "subscribers",
        "subscriptions",
        "matches",
        "staged_matches",
        "fresh_alerts",
        "outbox",
    } <= tables
    assert mode == "wal"
    assert versions == [(1,), (2,), (3,), (4,), (5,), (6,), (7,), (8,), (9,), (10,)]


async def test_same_post_twice_is_stored_and_alerted_once(storage: Storage) -> None:
    match = await _subscribe(storage, 1, "Oreshnik")
    first = await storage.save_post(_post(), [match])
    second = await storage.save_post(_post(), [match])
    assert (first.created, first.alerts_queued) == (True, 1)
    assert (second.created, second.changed, second.alerts_queued) == (False, False, 0)
    assert await storage.count_posts() == 1
    assert len(await storage.pending_messages(datetime.now(UTC))) == 1


async def test_one_alert_per_subscriber_names_every_query(storage: Storage) -> None:
    a = await _subscribe(storage, 1, "Oreshnik")
    b = await _subscribe(storage, 1, "launched")
    c = await _subscribe(storage, 2, "Oreshnik")
    await storage.save_post(_post(), [a, b, c])
    pending = await storage.pending_messages(datetime.now(UTC))
    by_chat = {m.chat_id: m.queries for m in pending}
    assert by_chat == {1: ("Oreshnik", "launched"), 2: ("Oreshnik",)}


async def test_edit_alerts_only_newly_matching_subscribers(storage: Storage) -> None:
    a = await _subscribe(storage, 1, "Oreshnik")
    b = await _subscribe(storage, 2, "Kapustin")
    await storage.save_post(_post(text="Oreshnik launched"), [a])
    result = await storage.save_post(_post(text="Oreshnik launched at Kapustin Yar"), [a, b])
    assert result.changed
    assert result.alerts_queued == 1
    pending = await storage.pending_messages(datetime.now(UTC))
    assert sorted(m.chat_id for m in pending) == [1, 2]
    stored = await storage.get_post("jsonl", "ch", "1")
    assert stored is not None
    assert stored.post.edited
    assert stored.post.text == "Oreshnik launched at Kapustin Yar"


async def test_cursor_is_saved_with_the_post(storage: Storage) -> None:
    source_id = await storage.ensure_source("jsonl:/x", "jsonl")
    assert await storage.ensure_source("jsonl:/x", "jsonl") == source_id
    assert await storage.get_cursor(source_id) is None
    await storage.save_post(_post(), [], source_id=source_id, cursor="42")
    assert await storage.get_cursor(source_id) == "42"


async def test_failed_transaction_leaves_nothing(storage: Storage) -> None:
    source_id = await storage.ensure_source("jsonl:/x", "jsonl")
    await storage.save_post(_post("2"), [], source_id=source_id, cursor="1")
    # A post whose date cannot be stored fails inside the transaction: neither the post
    # nor the cursor moves, so the source will offer the same line again.
    broken = Post("jsonl", "ch", "3", "not a date", "x", None)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        await storage.save_post(broken, [], source_id=source_id, cursor="2")
    assert await storage.get_cursor(source_id) == "1"
    assert await storage.get_post("jsonl", "ch", "3") is None


async def test_outbox_states(storage: Storage) -> None:
    match = await _subscribe(storage, 1, "Oreshnik")
    await storage.save_post(_post("1"), [match])
    await storage.save_post(_post("2"), [match])
    await storage.save_post(_post("3"), [match])
    first, second, third = await storage.pending_messages(datetime.now(UTC))
    await storage.mark_sent(first.id)
    await storage.set_aside(third.id, "Bad Request: can't parse entities")
    assert await storage.outbox_counts() == {"pending": 1, "sent": 1, "failed": 1}
    later = datetime.now(UTC) + timedelta(seconds=30)
    await storage.postpone(second.id, later, "Too Many Requests")
    assert await storage.pending_messages(datetime.now(UTC)) == []
    assert await storage.next_attempt_at() == later
    due = await storage.pending_messages(later)
    assert [m.id for m in due] == [second.id]
    assert due[0].attempts == 1


async def test_postponed_message_holds_back_later_ones_for_that_chat(storage: Storage) -> None:
    one = await _subscribe(storage, 1, "Oreshnik")
    two = await _subscribe(storage, 2, "Oreshnik")
    await storage.save_post(_post("1"), [one, two])
    await storage.save_post(_post("2"), [one, two])
    pending = await storage.pending_messages(datetime.now(UTC))
    first_for_1 = next(m for m in pending if m.chat_id == 1)
    await storage.postpone(first_for_1.id, datetime.now(UTC) + timedelta(minutes=1), "429")
    due = await storage.pending_messages(datetime.now(UTC))
    assert {m.chat_id for m in due} == {2}  # chat 1's second alert must not overtake its first


async def test_blocked_subscriber_keeps_data_and_gets_nothing(storage: Storage) -> None:
    match = await _subscribe(storage, 1, "Oreshnik")
    await storage.save_post(_post(), [match])
    await storage.deactivate_subscriber(1)
    assert await storage.pending_messages(datetime.now(UTC)) == []
    assert await storage.active_subscriptions() == []
    assert [s.query for s in await storage.subscriptions_of(1)] == ["Oreshnik"]
    subscriber = await storage.upsert_subscriber(1, "back again")  # /start reactivates
    assert subscriber.active
    assert len(await storage.pending_messages(datetime.now(UTC))) == 1


async def test_subscriptions_are_unique_per_chat(storage: Storage) -> None:
    await storage.upsert_subscriber(1, "a")
    first = await storage.add_subscription(1, "Oreshnik")
    assert first is not None
    assert await storage.add_subscription(1, "Oreshnik") is None
    await storage.remove_subscription(first.id)
    assert await storage.subscriptions_of(1) == []


async def test_full_text_search_treats_input_as_words(storage: Storage) -> None:
    await storage.save_post(_post("1", "Искандер-М на учениях"), [])
    await storage.save_post(_post("2", "Weather today"), [])
    found = await storage.search_posts(["искандер"])
    assert [p.post.post_id for p in found] == ["1"]
    # FTS syntax in user input is quoted, never interpreted (and never an SQL error).
    assert await storage.search_posts(['" OR *', "NEAR("]) == []


async def test_hostile_text_round_trips(storage: Storage) -> None:
    text = "<b>x</b> '; DROP TABLE posts; -- 🚀 \u202e"
    await storage.save_post(_post("9", text), [])
    stored = await storage.get_post("jsonl", "ch", "9")
    assert stored is not None
    assert stored.post.text == text


async def test_deleted_post_stays_marked_and_views_update_quietly(storage: Storage) -> None:
    match = await _subscribe(storage, 1, "Oreshnik")
    post = Post(
        "telegram",
        "milinfolive",
        "5",
        NOW,
        "Oreshnik",
        "https://t.me/milinfolive/5",
        forwarded_from="militaryrussiaru",
        views=1200,
        media_count=3,
    )
    await storage.save_post(post, [match])
    again = await storage.save_post(replace(post, views=2500), [match])
    assert not again.changed
    assert await storage.mark_deleted("telegram", "milinfolive", "5")
    assert not await storage.mark_deleted("telegram", "milinfolive", "404")
    stored = await storage.get_post("telegram", "milinfolive", "5")
    assert stored is not None
    assert stored.deleted
    assert (stored.post.views, stored.post.media_count) == (2500, 3)
    assert stored.post.forwarded_from == "militaryrussiaru"
    assert len(await storage.pending_messages(datetime.now(UTC))) == 1


async def test_a_source_that_works_again_is_no_longer_failing(storage: Storage) -> None:
    source_id = await storage.ensure_source("tgweb:milinfolive", "tgweb")
    for _ in range(3):
        await storage.record_source_error(source_id, "FetchError: 502")
    (info,) = await storage.list_sources()
    assert info.failures == 3
    assert info.failing_since is not None
    await storage.record_source_ok(source_id)
    (info,) = await storage.list_sources()
    assert (info.failures, info.failing_since, info.stopped_at) == (0, None, None)
    assert info.last_ok_at is not None
    assert info.last_error == "FetchError: 502"  # still shown, as the last error seen


async def test_a_cursor_written_mid_read_says_nothing_about_health(storage: Storage) -> None:
    # An X account looked up (its cursor kept), then its timeline refused: the source must
    # read as failing, not as "read OK just now".
    source_id = await storage.ensure_source("x:@SokovNikolai", "x")
    await storage.record_source_error(source_id, "XApiError: HTTP 500")
    await storage.set_cursor(source_id, '{"user_id": "1"}')
    await storage.save_post(_post("1"), [], source_id=source_id, cursor='{"user_id": "2"}')
    (info,) = await storage.list_sources()
    assert (info.failures, info.last_ok_at) == (1, None)
    assert await storage.get_cursor(source_id) == '{"user_id": "2"}'


async def test_a_stopped_source_stays_stopped_until_a_read_succeeds(storage: Storage) -> None:
    source_id = await storage.ensure_source("x:@SokovNikolai", "x")
    await storage.record_source_error(source_id, "XAuthError: HTTP 401", stopped=True)
    (first,) = await storage.list_sources()
    assert first.stopped_at is not None
    await storage.record_source_error(source_id, "XAuthError: HTTP 401", stopped=True)
    (again,) = await storage.list_sources()
    assert again.stopped_at == first.stopped_at  # stopped since the first refusal
    assert again.failing_since == first.failing_since
    # A transient error later does not hide that the source is stopped (the token may be
    # refused still): only a read that succeeds ends it.
    await storage.record_source_error(source_id, "FetchError: timeout")
    (flaky,) = await storage.list_sources()
    assert (flaky.stopped_at, flaky.failures) == (first.stopped_at, 3)
    await storage.record_source_error(source_id, "XAuthError: HTTP 401", stopped=True)
    await storage.record_source_ok(source_id)
    (healthy,) = await storage.list_sources()
    assert (healthy.stopped_at, healthy.failures) == (None, 0)


async def test_a_removed_source_added_again_is_watched_from_then(storage: Storage) -> None:
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    source_id = await storage.ensure_source("tgweb:milinfolive", "tgweb", added_at=long_ago)
    assert await storage.source_added_at(source_id) == long_ago
    await storage.record_source_error(source_id, "NoPreviewError: none", stopped=True)
    assert await storage.remove_source("tgweb:milinfolive")
    assert await storage.add_source("tgweb:milinfolive", "tgweb", origin="chat")
    added = await storage.source_added_at(source_id)
    assert added is not None
    assert added > long_ago
    (info,) = await storage.list_sources()
    assert (info.stopped_at, info.failing_since, info.failures) == (None, None, 0)


async def test_the_channel_title_is_stored_shown_with_alerts_and_kept_for_the_source(
    storage: Storage,
) -> None:
    match = await _subscribe(storage, 1, "Oreshnik")
    source_id = await storage.ensure_source("rss:https://www.google.com/alerts/feeds/1/2", "rss")
    post = replace(_post(), channel="google.com", channel_title="Google Alert - Oreshnik")
    await storage.save_post(post, [match], source_id=source_id, cursor="{}")
    stored = await storage.get_post("jsonl", "google.com", "1")
    assert stored is not None
    assert stored.post.channel_title == "Google Alert - Oreshnik"
    (pending,) = await storage.pending_messages(datetime.now(UTC))
    assert pending.post is not None
    assert pending.post.post.channel_title == "Google Alert - Oreshnik"
    (entry,) = await storage.digest_entries(1, NOW - timedelta(days=1), datetime.now(UTC))
    assert entry.post.post.channel_title == "Google Alert - Oreshnik"
    (info,) = await storage.list_sources()
    assert info.title == "Google Alert - Oreshnik"

    # A read without a name keeps the one known; a renamed feed shows its new name.
    await storage.save_post(replace(post, channel_title=None), [], source_id=source_id)
    assert (await storage.list_sources())[0].title == "Google Alert - Oreshnik"
    renamed = replace(post, channel_title="Google Alert - Орешник")
    await storage.save_post(renamed, [], source_id=source_id)
    stored = await storage.get_post("jsonl", "google.com", "1")
    assert stored is not None
    assert stored.post.channel_title == "Google Alert - Орешник"
    assert (await storage.list_sources())[0].title == "Google Alert - Орешник"


async def _queues_agree(storage: Storage) -> list[tuple[int, str, int, str]]:
    """`outbox_queues` as the triggers keep it, checked against the outbox itself."""
    kept = [
        tuple(row)
        for row in await storage._all(
            "SELECT chat_id, kind, first_id, due_at FROM outbox_queues ORDER BY chat_id, kind"
        )
    ]
    worked_out = [
        tuple(row)
        for row in await storage._all(
            "SELECT chat_id, kind, MIN(id), MAX(next_attempt_at) FROM outbox"
            " WHERE sent_at IS NULL AND failed_at IS NULL GROUP BY chat_id, kind"
            " ORDER BY chat_id, kind"
        )
    ]
    assert kept == worked_out
    return kept  # type: ignore[return-value]


async def test_the_queue_summary_follows_every_change_to_waiting_messages(
    storage: Storage,
) -> None:
    # The sender reads `outbox_queues` instead of grouping every waiting row: after each
    # kind of change it must say exactly what the outbox says.
    matches = [await _subscribe(storage, chat, "Oreshnik") for chat in (1, 2, 3)]
    for number in range(6):
        await storage.save_post(_post(str(number)), matches)
    await storage.file_alerts()
    now = datetime.now(UTC) + timedelta(seconds=1)  # the rows are stamped with the real time
    await storage.queue_digest(1, ["<b>Digest</b>"], now)
    assert len(await _queues_agree(storage)) == 4
    waiting = await storage.pending_messages(now + timedelta(seconds=1))
    by_chat: dict[int, list[int]] = {}
    for message in waiting:
        by_chat.setdefault(message.chat_id, []).append(message.id)
    await storage.mark_sent(by_chat[1][:2])
    await _queues_agree(storage)
    await storage.postpone(by_chat[2][0], now + timedelta(hours=1), "429")
    await _queues_agree(storage)
    await storage.hold_alerts(3, now + timedelta(hours=2))
    await _queues_agree(storage)
    later = now + timedelta(hours=1, seconds=1)
    assert 3 not in await storage.pending_chats(later, 10)  # held past `later`
    await storage.release_alerts(3)
    await _queues_agree(storage)
    await storage.set_aside(by_chat[2][1:3], "refused")
    await _queues_agree(storage)
    await storage.move_chat(3, 30)
    kept = await _queues_agree(storage)
    assert {row[0] for row in kept} == {1, 2, 30}
    await storage.mark_sent([m.id for m in await storage.pending_messages(later, 100)])
    await storage.mark_sent(
        [m.id for m in await storage.pending_messages(now + timedelta(days=1), 100)]
    )
    assert await _queues_agree(storage) == []
    assert await storage.next_attempt_at() is None


async def test_the_senders_reads_do_not_wait_behind_a_write(storage: Storage) -> None:
    # The writer's thread is held (a slow write, in effect) by a function that waits; the
    # sender's and the digest's reads go through the reading connection and still answer.
    import asyncio
    import threading

    match = await _subscribe(storage, 1, "Oreshnik")
    await storage.save_post(_post(), [match])
    await storage.file_alerts()  # (a write: the sender does it between its reads)
    release = threading.Event()
    await storage._db.create_function("hold_the_writer", 0, lambda: int(release.wait(60)))
    writing = asyncio.create_task(storage._db.execute("SELECT hold_the_writer()"))
    try:
        await asyncio.sleep(0)
        later = datetime.now(UTC) + timedelta(seconds=1)
        assert await asyncio.wait_for(storage.pending_chats(later, 10), 30) == [1]
        assert len(await asyncio.wait_for(storage.pending_messages(later), 30)) == 1
        assert await asyncio.wait_for(storage.next_attempt_at(), 30) is not None
        assert not writing.done()
    finally:
        release.set()
        await writing
