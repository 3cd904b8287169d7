"""`dozor migrate`: a SQLite deployment copied into PostgreSQL, resumably, checked by counts."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import cli
from bot.domain import MODE_DIGEST, Post, Span
from bot.storage import DatabaseInUse, SqliteStorage, Storage
from bot.storage import transfer as transfer_module
from bot.storage.postgres import PostgresStorage
from bot.storage.records import MatchRecord, PendingMessage
from bot.storage.transfer import migrate
from tests.contract.conftest import _empty_tables

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CHATS = (101, 102, -100_500)


async def _deployment(path: Path) -> None:
    """A small but complete deployment: sources with state, posts with matches (merged and
    staged), alerts filed, sent and waiting, a digest, subscribers with settings."""
    db = await SqliteStorage.open(path)
    try:
        source = await db.ensure_source("jsonl:/data/posts.jsonl", "jsonl")
        await db.record_source_error(source, "HTTP 502")
        for chat_id in CHATS:
            kind = "supergroup" if chat_id < 0 else "private"
            await db.upsert_subscriber(chat_id, f"chat {chat_id}", kind=kind, tg_language="ru")
            await db.add_subscription(chat_id, "Орешник")
            await db.add_subscription(chat_id, "INF", mode=MODE_DIGEST)
        await db.update_subscriber(101, timezone="Europe/Moscow", muted_until=NOW)
        subscriptions = {
            (s.chat_id, s.query): s.id for c in CHATS for s in await db.subscriptions_of(c)
        }
        for number in range(12):
            text = f"Пост {number}: «Орешник» и договор INF, ёлки-палки"
            matches = [
                MatchRecord(subscriptions[(chat_id, query)], chat_id, query, (Span(10, 17),))
                for chat_id in CHATS
                for query in ("Орешник", "INF")
            ]
            post = Post(
                "jsonl", "milinfo", str(number), NOW + timedelta(minutes=number), text, None
            )
            await db.save_post(post, matches, source_id=source, cursor=str(number))
            if number == 5:
                await db.merge_matches()  # the rest stay staged, as in a running service
        await db.file_alerts()
        waiting = await db.pending_messages(datetime.now(UTC) + timedelta(days=1))
        await db.mark_sent([message.id for message in waiting[:5]])
        await db.queue_digest(102, ["<b>Digest</b> of the day"], NOW + timedelta(hours=1))
        for number in (12, 13):  # alerts not filed yet (one row per post on PostgreSQL)
            post = Post("jsonl", "milinfo", str(number), NOW, f"Орешник {number}", None)
            matches = [
                MatchRecord(subscriptions[(chat_id, "Орешник")], chat_id, "Орешник", (Span(0, 7),))
                for chat_id in CHATS
            ]
            await db.save_post(post, matches, source_id=source)
    finally:
        await db.close()


def _later() -> datetime:
    return datetime.now(UTC) + timedelta(days=1)


def _waiting(messages: list[PendingMessage]) -> list[tuple[int, str | None, tuple[str, ...]]]:
    return [(m.chat_id, m.post.post.post_id if m.post else m.text, m.queries) for m in messages]


class Stopped(Exception):
    """A copy stopped as a kill would stop it, between two batches."""


async def _stopped_then_resumed(
    source: Path, url: str, stop: Callable[[str, int, int], bool]
) -> None:
    """Copy until `stop(table, done, total)` holds, then copy again: the counts agree."""

    def interrupt(table: str, done: int, total: int) -> None:
        if stop(table, done, total):
            raise Stopped

    with pytest.raises(Stopped):
        await migrate(source, url, interrupt)
    counts = await migrate(source, url, lambda *step: None)
    assert all(count.equal for count in counts), counts


async def _assert_filed_alike(copied: Storage, original: Storage) -> None:
    """Both engines file their waiting alerts into the same messages."""
    for store in (copied, original):
        while await store.file_alerts():
            pass
    assert _waiting(await copied.pending_messages(_later(), 1000)) == _waiting(
        await original.pending_messages(_later(), 1000)
    )


async def test_a_deployment_is_copied_and_counted_equal(tmp_path: Path, postgres_url: str) -> None:
    await _empty_tables(postgres_url)
    source = tmp_path / "dozor.sqlite3"
    await _deployment(source)
    seen: list[tuple[str, int, int]] = []
    counts = await migrate(source, postgres_url, lambda *step: seen.append(step))
    assert all(count.equal for count in counts), counts
    by_table = {count.table: count.source for count in counts}
    assert by_table["matches"] == (12 * 2 + 2) * len(CHATS)  # merged and staged alike
    assert by_table["outbox"] > 0
    assert by_table["sent_daily"] == 1
    assert by_table["fresh_alerts"] == 2 * len(CHATS)
    assert ("matches", by_table["matches"], by_table["matches"]) in seen

    copied = await PostgresStorage.open(postgres_url)
    try:
        original = await SqliteStorage.open(source)
        try:
            for chat_id in CHATS:
                assert await copied.get_subscriber(chat_id) == await original.get_subscriber(
                    chat_id
                )
                assert await copied.subscriptions_of(chat_id) == await original.subscriptions_of(
                    chat_id
                )
            assert await copied.get_post("jsonl", "milinfo", "3") == await original.get_post(
                "jsonl", "milinfo", "3"
            )
            assert await copied.outbox_counts() == await original.outbox_counts()
            await _assert_filed_alike(copied, original)  # the alerts waiting to be filed
        finally:
            await original.close()
        # New rows get new ids: the identity sequences moved past the copied ones.
        added = await copied.add_subscription(101, "Искандер-М")
        assert added is not None
        assert added.id > max(s.id for s in await copied.subscriptions_of(102))
    finally:
        await copied.close()


async def test_an_interrupted_copy_goes_on_where_it_stopped(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _empty_tables(postgres_url)
    source = tmp_path / "dozor.sqlite3"
    await _deployment(source)
    monkeypatch.setattr(transfer_module, "BATCH", 7)
    # Again: a row copied twice would break a primary key; one skipped, the counts.
    await _stopped_then_resumed(
        source, postgres_url, lambda table, done, total: table == "matches" and 0 < done < total
    )


async def test_waiting_alerts_copied_in_two_runs_stay_whole_and_in_order(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL holds a post's waiting alerts in one row: a copy stopped between two rows
    # of the same post goes on into that row, in chat order.
    await _empty_tables(postgres_url)
    source = tmp_path / "dozor.sqlite3"
    await _deployment(source)
    monkeypatch.setattr(transfer_module, "BATCH", 2)  # a post's 3 alerts over two batches
    await _stopped_then_resumed(
        source, postgres_url, lambda table, done, total: table == "fresh_alerts" and done == 2
    )
    copied = await PostgresStorage.open(postgres_url)
    original = await SqliteStorage.open(source)
    try:
        await _assert_filed_alike(copied, original)
    finally:
        await original.close()
        await copied.close()


async def test_a_database_in_use_by_a_service_is_not_copied(
    tmp_path: Path, postgres_url: str
) -> None:
    source = tmp_path / "dozor.sqlite3"
    running = await SqliteStorage.open(source, exclusive=True)
    try:
        with pytest.raises(DatabaseInUse):
            await migrate(source, postgres_url, lambda *step: None)
    finally:
        await running.close()


def test_the_command_says_what_it_needs(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert cli.run_migrate("dozor.sqlite3", "postgresql://x/y", out, err) == 2
    assert "--from sqlite:PATH" in err.getvalue()
    err = io.StringIO()
    missing = tmp_path / "none.sqlite3"
    assert cli.run_migrate(f"sqlite:{missing}", "postgresql://x/y", out, err) == 2
    assert "no SQLite database" in err.getvalue()


def test_the_command_hides_the_password_when_the_server_refuses(tmp_path: Path) -> None:
    source = tmp_path / "dozor.sqlite3"
    source.write_bytes(b"")  # an empty file is an empty SQLite database
    out, err = io.StringIO(), io.StringIO()
    target = "postgresql://dozor:s3cret@127.0.0.1:1/nowhere?connect_timeout=2"
    assert cli.run_migrate(f"sqlite:{source}", target, out, err) == 2
    assert "cannot use the PostgreSQL database" in err.getvalue()
    assert "s3cret" not in err.getvalue()
