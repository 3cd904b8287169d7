"""New alerts wait in `fresh_alerts` (clustered by post, cheap to write) until the sender
files them into the outbox: nothing is lost or reordered on the way (migration 0009)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from bot.domain import Post, Span
from bot.storage import SqliteStorage, Storage
from bot.storage.sqlite import MatchRecord, _us

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
LATER = datetime.now(UTC) + timedelta(days=1)  # every row is due by then


def _post(number: int) -> Post:
    return Post("jsonl", "ch", str(number), NOW, f"Oreshnik {number}", f"https://t.me/ch/{number}")


async def _subscribe(storage: Storage, chat_id: int) -> MatchRecord:
    await storage.upsert_subscriber(chat_id, f"user {chat_id}")
    subscription = await storage.add_subscription(chat_id, "Oreshnik")
    assert subscription is not None
    return MatchRecord(subscription.id, chat_id, "Oreshnik", (Span(0, 8),))


async def _fresh(storage: Storage) -> int:
    row = await storage._one("SELECT COUNT(*) AS n FROM fresh_alerts")
    assert row is not None
    return int(row["n"])


async def _waiting(storage: Storage) -> list[tuple[int, str]]:
    """(chat, post number) of every waiting outbox row, in the order they would go."""
    rows = await storage._all(
        "SELECT outbox.chat_id, posts.post_id FROM outbox LEFT JOIN posts"
        " ON posts.id = outbox.post_id WHERE sent_at IS NULL AND failed_at IS NULL"
        " ORDER BY outbox.id"
    )
    return [(int(row[0]), row[1]) for row in rows]


async def test_alerts_are_filed_in_batches_in_post_order(storage: Storage) -> None:
    matches = [await _subscribe(storage, chat) for chat in (3, 1, 2)]
    for number in range(5):
        result = await storage.save_post(_post(number), matches)
        assert result.alerts_queued == 3
    assert await _fresh(storage) == 15
    assert await _waiting(storage) == []
    assert (await storage.outbox_counts())["pending"] == 15  # counted while unfiled
    assert await storage.next_attempt_at() is not None  # the sender looks at once

    assert await storage.file_alerts(batch=4) == 4
    assert await storage.file_alerts(batch=4) == 4
    assert await _fresh(storage) == 7
    assert await _waiting(storage) == [
        (1, "0"),
        (2, "0"),
        (3, "0"),
        (1, "1"),
        (2, "1"),
        (3, "1"),
        (1, "2"),
        (2, "2"),
    ]
    while await storage.file_alerts(batch=4):
        pass
    assert await _fresh(storage) == 0
    # Each chat's alerts in post order; the queue summaries agree with the rows.
    for chat in (1, 2, 3):
        waiting = [number for c, number in await _waiting(storage) if c == chat]
        assert waiting == ["0", "1", "2", "3", "4"]
    kept = await storage._all("SELECT chat_id, kind, first_id, due_at FROM outbox_queues")
    worked_out = await storage._all("SELECT * FROM outbox_waiting_queues")
    assert sorted(map(tuple, kept)) == sorted(map(tuple, worked_out))
    assert (await storage.outbox_counts())["pending"] == 15
    assert await storage.file_alerts() == 0


async def test_an_edit_files_no_second_alert_and_a_reread_none(storage: Storage) -> None:
    match = await _subscribe(storage, 1)
    await storage.save_post(_post(1), [match])
    await storage.save_post(_post(1), [match])  # the same post read again
    edited = Post("jsonl", "ch", "1", NOW, "Oreshnik 1, updated", "https://t.me/ch/1")
    assert (await storage.save_post(edited, [match])).alerts_queued == 0
    await storage.file_alerts()
    assert await _waiting(storage) == [(1, "1")]


async def test_a_digest_goes_after_the_alerts_queued_before_it(storage: Storage) -> None:
    match = await _subscribe(storage, 1)
    await storage.save_post(_post(1), [match])
    await storage.queue_digest(1, ["<b>Digest</b>"], NOW)
    await storage.save_post(_post(2), [match])
    assert await _waiting(storage) == [(1, "1"), (1, None)]  # filed before the digest
    pending = await storage.pending_messages(LATER)
    assert [(m.kind, m.post.post.post_id if m.post else None) for m in pending] == [
        ("alert", "1"),
        ("digest", None),
        ("alert", "2"),
    ]


async def test_a_chat_that_blocks_the_bot_has_its_unfiled_alerts_set_aside(
    storage: Storage,
) -> None:
    one, two = await _subscribe(storage, 1), await _subscribe(storage, 2)
    await storage.save_post(_post(1), [one, two])
    await storage.save_post(_post(2), [one, two])
    await storage.deactivate_subscriber(1)
    assert await storage.set_aside_chat(1, "Forbidden: bot was blocked by the user") == 2
    assert await storage.outbox_counts() == {"pending": 2, "sent": 0, "failed": 2}
    # A chat blocked before a post is read gets no alert for it at all.
    assert (await storage.save_post(_post(3), [one, two])).alerts_queued == 1
    while await storage.file_alerts():
        pass
    assert [chat for chat, _ in await _waiting(storage)] == [2, 2, 2]


async def test_a_post_with_unfiled_alerts_is_not_pruned(storage: Storage) -> None:
    match = await _subscribe(storage, 1)
    await storage.save_post(_post(1), [match])
    later = datetime.now(UTC) + timedelta(days=400)
    assert (await storage.prune(later)).posts == 0
    await storage.file_alerts()
    pending = await storage.pending_messages(LATER)
    await storage.mark_sent([m.id for m in pending])
    # Posts a source's newest are kept (KEEP_PER_SOURCE) only for sources; this one has none.
    assert (await storage.prune(later)).posts == 1


async def test_a_group_that_becomes_a_supergroup_takes_its_unfiled_alerts(
    storage: Storage,
) -> None:
    old = await _subscribe(storage, -100)
    await storage.save_post(_post(1), [old])
    assert await storage.move_chat(-100, -1001)
    assert await _fresh(storage) == 0
    assert await _waiting(storage) == [(-1001, "1")]


async def test_the_migration_keeps_every_match_and_its_time(tmp_path: Path) -> None:
    # A database as it was before migration 0009 (times stored as ISO text).
    path = tmp_path / "old.sqlite3"
    folder = resources.files("bot.storage") / "migrations"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
        for script in sorted(folder.iterdir(), key=lambda entry: entry.name):
            version = int(script.name.split("_", 1)[0])
            if script.name.endswith(".sql") and version < 9:
                db.executescript(script.read_text(encoding="utf-8"))
                db.execute("INSERT INTO schema_migrations VALUES (?, 'then')", (version,))
        db.execute("INSERT INTO subscribers (chat_id, created_at) VALUES (1, 'then')")
        db.execute(
            "INSERT INTO subscriptions (id, chat_id, query, created_at) VALUES (5, 1, 'INF', 'x')"
        )
        db.execute(
            "INSERT INTO posts (id, source, channel, post_id, date, text, stored_at, updated_at)"
            " VALUES (7, 'jsonl', 'ch', '1', ?, 'INF treaty', ?, ?)",
            ("2026-11-20T08:00:00.000000+00:00",) * 3,
        )
        db.execute(
            "INSERT INTO matches VALUES (7, 5, 1, 'INF', '2026-11-20T09:00:00.123456+00:00')"
        )
    storage = await SqliteStorage.open(path)
    try:
        rows = await storage._all("SELECT * FROM matches")
        assert [tuple(row) for row in rows] == [
            (7, 5, 1, "INF", _us(datetime(2026, 11, 20, 9, 0, 0, 123456, tzinfo=UTC)))
        ]
        entries = await storage.digest_entries(
            1, datetime(2026, 11, 20, 9, tzinfo=UTC), datetime(2026, 11, 20, 10, tzinfo=UTC)
        )
        assert [(entry.post.id, entry.queries) for entry in entries] == [(7, ("INF",))]
    finally:
        await storage.close()
