"""Workers on one PostgreSQL database: one leader, each source read by one worker, news
between them — and what a worker held is free again the moment its session ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta

import pytest

from bot.app import SESSION_CHECK
from bot.delivery.sender import GROUP_INTERVAL, PRIVATE_INTERVAL
from bot.domain import Post, SourceSpec, Span
from bot.ingest import Ingest, Matcher
from bot.sources.base import Source
from bot.sources.manager import SourceManager
from bot.storage.coordination import OUTBOX, SUBSCRIPTIONS
from bot.storage.postgres import PostgresStorage
from bot.storage.postgres.coordination import HANDOVER, PostgresCoordination
from bot.storage.records import MatchRecord, PendingMessage
from tests.contract.conftest import BOUND, _empty_tables, _eventually


@pytest.fixture
async def db(postgres_url: str) -> AsyncIterator[PostgresStorage]:
    storage = await PostgresStorage.open(postgres_url)
    await _empty_tables(postgres_url)
    yield storage
    await storage.close()


async def _worker(url: str, *, telegram: bool = False) -> PostgresCoordination:
    return await PostgresCoordination.open(url, telegram=telegram)


async def test_one_leader_and_the_role_passes_on_when_it_dies(postgres_url: str) -> None:
    first, second = await _worker(postgres_url), await _worker(postgres_url)
    try:
        assert await first.try_role("leader")
        assert not await second.try_role("leader")
        assert await first.try_role("leader")  # still held
        await first.close()  # as if killed: the session ends, and the server frees its locks
        await _eventually(lambda: second.try_role("leader"))
    finally:
        await first.close()
        await second.close()


async def test_a_source_is_read_by_one_worker_at_a_time(postgres_url: str) -> None:
    first, second = await _worker(postgres_url), await _worker(postgres_url)
    try:
        assert await first.claim(7)
        assert not await second.claim(7)
        assert await second.claim(8)
        await first.release(7)
        assert await second.claim(7)
        assert second.claimed == {7, 8}
        assert await first.alive()
    finally:
        await first.close()
        await second.close()
    assert not await first.alive()


async def test_each_worker_takes_its_share_of_sources(postgres_url: str) -> None:
    plain = await _worker(postgres_url)
    telegram = await _worker(postgres_url, telegram=True)
    try:
        assert await plain.share(5, telegram=False) == 3  # two workers read feeds
        assert await plain.share(4, telegram=True) == 4  # one has a Telegram session
        await telegram.close()

        async def alone() -> bool:
            return await plain.share(5, telegram=False) == 5

        await _eventually(alone)
    finally:
        await plain.close()
        await telegram.close()


async def _next(notes: AsyncIterator[tuple[str, str]]) -> tuple[str, str]:
    return await asyncio.wait_for(anext(notes), BOUND)


async def test_subscription_changes_and_queued_alerts_are_announced(
    db: PostgresStorage, postgres_url: str
) -> None:
    listener = await _worker(postgres_url)
    try:
        async with listener.listening([SUBSCRIPTIONS, OUTBOX]) as notes:
            await db.upsert_subscriber(41, "analyst")
            added = await db.add_subscription(41, "Oreshnik")
            assert added is not None
            assert await _next(notes) == (SUBSCRIPTIONS, "41")
            await db.remove_subscription(added.id)
            assert await _next(notes) == (SUBSCRIPTIONS, "41")
            await db.deactivate_subscriber(41)
            assert await _next(notes) == (SUBSCRIPTIONS, "41")

            await db.upsert_subscriber(42, "desk")
            added = await db.add_subscription(42, "Oreshnik")
            assert added is not None
            assert await _next(notes) == (SUBSCRIPTIONS, "42")
            post = Post("jsonl", "milinfo", "1", datetime.now(UTC), "Oreshnik", None)
            match = MatchRecord(added.id, 42, "Oreshnik", (Span(0, 8),))
            await db.save_post(post, [match])
            assert await _next(notes) == (OUTBOX, "")
    finally:
        await listener.close()


async def test_a_lost_session_releases_quietly(postgres_url: str) -> None:
    worker = await _worker(postgres_url)
    assert await worker.claim(9)
    await worker._locks.close()  # the session is gone: the server freed the claim already
    await worker.release(9)  # at shutdown: no error, nothing left claimed
    assert worker.claimed == set()
    assert not await worker.alive()
    await worker.close()


async def test_a_source_this_worker_cannot_build_is_left_to_the_others(
    db: PostgresStorage, postgres_url: str
) -> None:
    await db.ensure_source("x:@someone", "x")
    worker = await _worker(postgres_url)

    def unbuildable(spec: SourceSpec) -> Source:
        raise ValueError("X_BEARER_TOKEN is not set")

    matcher = Matcher(db)
    manager = SourceManager(
        db, Ingest(db, matcher, asyncio.Event()), unbuildable, coordination=worker
    )
    try:
        await manager.sync()
        assert manager.running == []
        assert worker.claimed == set()  # another worker, with the token, may read it
    finally:
        await manager.stop_all()
        matcher.close()
        await worker.close()


class _Idle:
    """A streaming source that reads nothing (what it reads is not the point here)."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec

    async def run(self, feed: object) -> None:
        await asyncio.Event().wait()


async def test_telegram_sources_go_back_to_a_worker_with_a_session(
    db: PostgresStorage, postgres_url: str
) -> None:
    await db.ensure_source("telegram:@milinfolive", "telegram")
    plain = await _worker(postgres_url)
    matcher = Matcher(db)
    manager = SourceManager(
        db,
        Ingest(db, matcher, asyncio.Event()),
        _Idle,  # type: ignore[arg-type]
        coordination=plain,
        telegram=False,
    )
    session: PostgresCoordination | None = None
    try:
        await manager.sync()  # no worker has a session: read through t.me/s meanwhile
        assert manager.running == ["telegram:@milinfolive"]
        session = await _worker(postgres_url, telegram=True)
        await manager.sync()
        assert manager.running == []
        assert plain.claimed == set()
        assert await session.claim(next(iter(await _source_ids(db))))
    finally:
        await manager.stop_all()
        matcher.close()
        await plain.close()
        if session is not None:
            await session.close()


async def _source_ids(db: PostgresStorage) -> list[int]:
    return [info.id for info in await db.list_sources()]


async def test_messages_handed_to_a_sender_are_claimed_while_its_worker_lives(
    db: PostgresStorage, postgres_url: str
) -> None:
    other_db = await PostgresStorage.open(postgres_url)
    first, second = await _worker(postgres_url), await _worker(postgres_url)
    db.claim_as(first.worker)
    other_db.claim_as(second.worker)
    later = datetime.now(UTC) + timedelta(days=1)
    try:
        matches = []
        for chat in (1, 2):
            await db.upsert_subscriber(chat, f"chat {chat}")
            added = await db.add_subscription(chat, "Oreshnik")
            assert added is not None
            matches.append(MatchRecord(added.id, chat, "Oreshnik", (Span(0, 8),)))
        for number in range(3):
            post = Post("jsonl", "milinfo", str(number), datetime.now(UTC), "Oreshnik", None)
            await db.save_post(post, matches)
        await db.file_alerts()

        # The first sender takes chat 1's next two messages; the second is handed none of
        # chat 1 (not even its third: a chat's messages go in order, from one sender).
        mine = await db.pending_messages(later, 10, chats=[1], per_chat=2)
        assert [(m.chat_id, m.post.post.post_id) for m in mine if m.post] == [(1, "0"), (1, "1")]
        theirs = await other_db.pending_messages(later, 10, chats=[1, 2])
        assert {m.chat_id for m in theirs} == {2}
        # Its own claims do not stop the first sender.
        assert [m.id for m in await db.pending_messages(later, 10, chats=[1], per_chat=2)] == [
            m.id for m in mine
        ]
        # A recorded outcome ends the claim on that row; the rest stay claimed.
        await db.mark_sent(mine[0].id)
        assert await other_db.pending_messages(later, 10, chats=[1]) == []
        # The first worker dies: its claims lapse with its session, and the next sender
        # takes chat 1 from its oldest waiting message (the one in flight is sent again).
        await first.close()
        await _eventually(
            lambda: _first_of(other_db.pending_messages(later, 10, chats=[1]), mine[1].id)
        )
    finally:
        await first.close()
        await second.close()
        await other_db.close()


async def _first_of(pending: Awaitable[list[PendingMessage]], wanted: int) -> bool:
    messages = await pending
    return bool(messages) and messages[0].id == wanted


def test_a_new_leader_waits_out_every_spacing_the_pacer_keeps() -> None:
    # The one before may have sent to a group up to its last moment, or for up to a session
    # check after the server cut it off: the new leader's first send keeps 20 a minute too.
    assert HANDOVER >= GROUP_INTERVAL + SESSION_CHECK
    assert HANDOVER >= PRIVATE_INTERVAL + SESSION_CHECK
