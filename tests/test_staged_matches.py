"""A post's matches are staged (clustered by post, no index by chat) and merged into
`matches` in batches sorted by chat (migration 0010): every read by chat sees them, and
nothing is lost or counted twice on the way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import bot.storage.sqlite as sqlite_storage
from bot.domain import Post, Span
from bot.storage import SqliteStorage, Storage
from bot.storage.sqlite import MatchRecord

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _post(number: int, text: str | None = None) -> Post:
    return Post(
        "jsonl",
        "ch",
        str(number),
        NOW,
        text or f"Oreshnik {number}",
        f"https://t.me/ch/{number}",
    )


async def _subscribe(storage: Storage, chat_id: int) -> MatchRecord:
    await storage.upsert_subscriber(chat_id, f"user {chat_id}")
    subscription = await storage.add_subscription(chat_id, "Oreshnik")
    assert subscription is not None
    return MatchRecord(subscription.id, chat_id, "Oreshnik", (Span(0, 8),))


async def _count(storage: Storage, table: str) -> int:
    row = await storage._one(f"SELECT COUNT(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"])


async def test_reads_by_chat_see_staged_matches(storage: Storage) -> None:
    matches = [await _subscribe(storage, chat) for chat in (1, 2)]
    for number in range(3):
        await storage.save_post(_post(number), matches)
    assert (await _count(storage, "staged_matches"), await _count(storage, "matches")) == (6, 0)

    since = datetime.now(UTC) - timedelta(hours=1)
    exported = await storage.matched_posts(1, since, 10)  # /export
    assert [entry.post.post.post_id for entry in exported] == ["2", "1", "0"]
    assert (await _count(storage, "staged_matches"), await _count(storage, "matches")) == (0, 6)

    await storage.save_post(_post(3), matches)
    until = await storage.write_barrier()  # the end of a digest's period merges too
    assert await _count(storage, "staged_matches") == 0
    entries = await storage.digest_entries(2, since, until)
    assert [entry.post.post.post_id for entry in entries] == ["0", "1", "2", "3"]
    assert all(entry.queries == ("Oreshnik",) for entry in entries)

    await storage.save_post(_post(4), matches)
    counts = await storage.mention_counts({1: (0, None, 0)}, since, datetime.now(UTC))
    assert sum(counts[1]["Oreshnik"].values()) == 5
    assert await storage.merge_matches() == 0  # nothing left to move


@pytest.mark.parametrize("merged", [False, True])
async def test_an_edit_alerts_no_chat_twice_whether_or_not_merged(
    storage: Storage, merged: bool
) -> None:
    one = await _subscribe(storage, 1)
    await storage.save_post(_post(1), [one])
    if merged:
        assert await storage.merge_matches() == 1
    two = await _subscribe(storage, 2)
    edited = _post(1, "Oreshnik 1, updated")
    assert (await storage.save_post(edited, [one, two])).alerts_queued == 1  # chat 2 only
    await storage.merge_matches()
    rows = await storage._all("SELECT post_id, chat_id FROM matches ORDER BY chat_id")
    assert [int(row["chat_id"]) for row in rows] == [1, 2]


async def test_ingest_merges_once_enough_matches_are_staged(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_storage, "MERGE_AT", 5)
    matches = [await _subscribe(storage, chat) for chat in (3, 1, 2)]
    await storage.save_post(_post(1), matches)
    assert await _count(storage, "staged_matches") == 3
    await storage.save_post(_post(2), matches)  # 6 staged: merged with this post
    assert (await _count(storage, "staged_matches"), await _count(storage, "matches")) == (0, 6)
    await storage.save_post(_post(3), matches)
    assert (await _count(storage, "staged_matches"), await _count(storage, "matches")) == (3, 6)


async def test_retention_counts_and_removes_staged_matches(storage: Storage) -> None:
    match = await _subscribe(storage, 1)
    await storage.save_post(_post(1), [match])
    await storage.save_post(_post(2), [match])
    await storage.merge_matches()
    await storage.save_post(_post(3), [match])  # staged
    while await storage.file_alerts():
        pass
    pending = await storage.pending_messages(datetime.now(UTC) + timedelta(days=1))
    await storage.mark_sent([message.id for message in pending])
    pruned = await storage.prune(datetime.now(UTC) + timedelta(days=400))
    assert (pruned.posts, pruned.matches) == (3, 3)
    assert (await _count(storage, "staged_matches"), await _count(storage, "matches")) == (0, 0)


async def test_a_group_that_becomes_a_supergroup_takes_its_staged_matches(
    storage: Storage,
) -> None:
    old = await _subscribe(storage, -100)
    await storage.save_post(_post(1), [old])
    assert await storage.move_chat(-100, -1001)
    rows = await storage._all(
        "SELECT chat_id FROM matches UNION ALL SELECT chat_id FROM staged_matches"
    )
    assert [int(row["chat_id"]) for row in rows] == [-1001]


async def test_a_reopened_database_remembers_what_is_staged(tmp_path: Path) -> None:
    path = tmp_path / "dozor.sqlite3"
    storage = await SqliteStorage.open(path)
    try:
        match = await _subscribe(storage, 1)
        await storage.save_post(_post(1), [match])
    finally:
        await storage.close()
    again = await SqliteStorage.open(path)
    try:
        assert again._staged == 1
        assert await again.merge_matches() == 1
        assert again._staged == 0
    finally:
        await again.close()
