"""Digests on both engines: who is due, what a digest is made of (posts in a period, the
chart's counts per local day, the order of the chat's queries), queueing it with the chat's
marks, the barrier that ends a digest's period, and /export's pages of matched posts.

Matches are stamped by the engine's clock when a post is saved, so periods are bounded by
`write_barrier` moments taken around the saves; a post's own date is the test's choice.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta

import psycopg
import pytest

from bot.digest import queue_digests
from bot.domain import MODE_DIGEST, MODE_INSTANT, DigestEntry, Post, StoredPost, Subscription
from bot.storage import QueuedDigest, Storage
from bot.storage.postgres import PostgresStorage
from bot.storage.records import MEDIA_CHART, MatchRecord

DAY = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # posts' dates, unless a test says otherwise


async def _chat(store: Storage, chat_id: int, *queries: str, **modes: str) -> list[Subscription]:
    """A chat and its queries, saved in the order given (`modes`: query → mode)."""
    await store.upsert_subscriber(chat_id, f"chat {chat_id}")
    saved = []
    for query in queries:
        found = await store.add_subscription(chat_id, query, mode=modes.get(query, "both"))
        assert found is not None
        saved.append(found)
    return saved


async def _matched(
    store: Storage, number: int, queries: list[Subscription], when: datetime = DAY
) -> int:
    """Post `number`, published at `when` and matched by `queries` now; its stored id."""
    post = Post("tgweb", "rybar", str(number), when, f"post {number}", f"https://t.me/{number}")
    records = [MatchRecord(q.id, q.chat_id, q.query, ()) for q in queries]
    return (await store.save_post(post, records)).post_id


def _numbers(entries: list[DigestEntry]) -> list[str]:
    return [entry.post.post.post_id for entry in entries]


# --- who is due ----------------------------------------------------------------------------


async def test_chats_never_scheduled_are_due_first_by_id_then_the_longest_due(
    store: Storage,
) -> None:
    for chat_id in (5, 1, 4, 2, 3, 6):
        await _chat(store, chat_id)
    await store.schedule_digests([(4, DAY - timedelta(hours=1)), (2, DAY - timedelta(hours=2))])
    await store.schedule_digests([(3, DAY), (6, DAY + timedelta(seconds=1))])  # 6: not yet
    due = await store.due_for_digest(DAY, 10)
    assert [s.chat_id for s in due] == [1, 5, 2, 4, 3]
    assert [s.next_digest_at for s in due] == [
        None,
        None,
        DAY - timedelta(hours=2),
        DAY - timedelta(hours=1),
        DAY,
    ]


async def test_due_chats_are_read_a_page_at_a_time(store: Storage) -> None:
    for chat_id in range(1, 8):
        await _chat(store, chat_id)
    # 1, 2 and 3 unknown; 4-7 due at two moments, two chats each.
    await store.schedule_digests(
        [(7, DAY - timedelta(hours=1)), (6, DAY - timedelta(hours=1)), (5, DAY), (4, DAY)]
    )
    seen: list[int] = []
    after: tuple[datetime | None, int] | None = None
    while page := await store.due_for_digest(DAY, 2, after=after):
        assert len(page) <= 2
        seen += [s.chat_id for s in page]
        after = (page[-1].next_digest_at, page[-1].chat_id)
    assert seen == [1, 2, 3, 6, 7, 4, 5]


async def test_a_page_after_an_unknown_chat_goes_on_to_the_scheduled_ones(store: Storage) -> None:
    for chat_id in (1, 2, 3):
        await _chat(store, chat_id)
    await store.schedule_digests([(1, DAY - timedelta(days=1))])
    due = await store.due_for_digest(DAY, 10, after=(None, 2))
    assert [s.chat_id for s in due] == [3, 1]
    # Chats scheduled meanwhile (the job schedules those not due on the way) drop out.
    await store.schedule_digests([(3, DAY + timedelta(hours=5))])
    assert [s.chat_id for s in await store.due_for_digest(DAY, 10, after=(None, 2))] == [1]


async def test_inactive_chats_are_never_due(store: Storage) -> None:
    await _chat(store, 1)
    await _chat(store, 2)
    await store.schedule_digests([(2, DAY - timedelta(hours=1))])
    await store.deactivate_subscriber(1)
    await store.deactivate_subscriber(2)
    assert await store.due_for_digest(DAY, 10) == []


async def test_scheduling_stores_the_moment_and_a_restart_forgets_them_all(store: Storage) -> None:
    await _chat(store, 1)
    await _chat(store, 2)
    await store.schedule_digests([])
    at = DAY + timedelta(hours=3, microseconds=5)
    await store.schedule_digests({(1, DAY), (2, at)})
    one, two = await store.get_subscriber(1), await store.get_subscriber(2)
    assert one is not None
    assert two is not None
    assert (one.next_digest_at, two.next_digest_at) == (DAY, at)
    assert [s.chat_id for s in await store.due_for_digest(DAY, 10)] == [1]

    await store.reschedule_all_digests()
    assert [s.chat_id for s in await store.due_for_digest(DAY, 10)] == [1, 2]
    assert all(s.next_digest_at is None for s in await store.due_for_digest(DAY, 10))


# --- what a digest is made of --------------------------------------------------------------


async def test_a_digest_holds_the_posts_matched_in_its_period_oldest_first(
    store: Storage,
) -> None:
    (query,) = await _chat(store, 1, "Oreshnik")
    before = await store.write_barrier()
    await _matched(store, 1, [query], DAY)
    await _matched(store, 2, [query], DAY - timedelta(hours=1))  # published earlier
    await _matched(store, 3, [query], DAY)  # the same date: by id
    until = await store.write_barrier()
    await _matched(store, 4, [query], DAY - timedelta(days=1))  # after the period
    later = await store.write_barrier()

    assert before <= until <= later
    assert until.tzinfo is not None
    assert until.utcoffset() == timedelta(0)
    entries = await store.digest_entries(1, before, until)
    assert _numbers(entries) == ["2", "1", "3"]
    assert all(entry.queries == ("Oreshnik",) for entry in entries)
    assert entries[0].post.post.date == DAY - timedelta(hours=1)
    assert _numbers(await store.digest_entries(1, until, later)) == ["4"]
    assert await store.digest_entries(1, later, datetime.now(UTC) + timedelta(hours=1)) == []
    assert await store.digest_entries(2, before, later) == []  # another chat's


async def test_a_post_lists_the_queries_in_the_chats_order_without_instant_ones(
    store: Storage,
) -> None:
    sarmat, oreshnik, kinzhal, poseidon = await _chat(
        store,
        1,
        "Sarmat",
        "Oreshnik",
        "Kinzhal",
        "Poseidon",
        Kinzhal=MODE_INSTANT,
        Poseidon=MODE_DIGEST,
    )
    since = await store.write_barrier()
    await _matched(store, 1, [poseidon, kinzhal, oreshnik, sarmat])
    await _matched(store, 2, [kinzhal])  # instant alerts only: not in the digest at all
    until = await store.write_barrier()
    (entry,) = await store.digest_entries(1, since, until)
    assert entry.queries == ("Sarmat", "Oreshnik", "Poseidon")


async def test_a_removed_query_keeps_what_it_matched_in_the_digest(store: Storage) -> None:
    oreshnik, sarmat = await _chat(store, 1, "Oreshnik", "Sarmat")
    since = await store.write_barrier()
    await _matched(store, 1, [oreshnik, sarmat])
    until = await store.write_barrier()
    await store.remove_subscription(oreshnik.id)
    (entry,) = await store.digest_entries(1, since, until)
    assert entry.queries == ("Oreshnik", "Sarmat")


async def test_many_chats_are_read_at_once_and_a_shared_post_once(store: Storage) -> None:
    (one,) = await _chat(store, 1, "Oreshnik")
    (two,) = await _chat(store, 2, "Oreshnik")
    await _chat(store, 3, "Oreshnik")
    first = await store.write_barrier()
    shared = await _matched(store, 1, [one, two])
    middle = await store.write_barrier()
    own = await _matched(store, 2, [two])
    until = await store.write_barrier()

    known: dict[int, StoredPost] = {}
    found = await store.digest_entries_of({1: first, 2: middle, 3: first}, until, known=known)
    assert {chat: _numbers(entries) for chat, entries in found.items()} == {1: ["1"], 2: ["2"]}
    assert sorted(known) == sorted([shared, own])  # the posts read, kept for later batches
    post = found[1][0].post
    assert post.id == shared
    assert post.post.text == "post 1"
    assert not post.deleted

    # A post already read is used as it is, not read again.
    again = await store.digest_entries_of({1: first, 2: first}, until, known=known)
    assert again[1][0].post is known[shared]
    assert _numbers(again[2]) == ["1", "2"]
    assert await store.digest_entries_of({}, until) == {}


async def test_the_charts_counts_are_per_query_per_local_day(store: Storage) -> None:
    oreshnik, sarmat, kinzhal = await _chat(
        store, 1, "Oreshnik", "Sarmat", "Kinzhal", Kinzhal=MODE_INSTANT
    )
    (other,) = await _chat(store, 2, "Oreshnik")
    since = await store.write_barrier()
    await _matched(store, 1, [oreshnik], datetime(2026, 11, 19, 20, 30, tzinfo=UTC))  # 23:30
    await _matched(store, 2, [oreshnik, sarmat], datetime(2026, 11, 19, 21, 30, tzinfo=UTC))
    await _matched(store, 3, [oreshnik, other], datetime(2026, 11, 20, 9, tzinfo=UTC))
    await _matched(store, 4, [kinzhal], datetime(2026, 11, 20, 9, tzinfo=UTC))
    until = await store.write_barrier()
    moscow = (180, None, 180)

    counts = await store.mention_counts({1: moscow, 2: (0, None, 0)}, since, until)
    assert counts == {
        1: {
            "Oreshnik": {date(2026, 11, 19): 1, date(2026, 11, 20): 2},
            "Sarmat": {date(2026, 11, 20): 1},
            "Kinzhal": {date(2026, 11, 20): 1},
        },
        2: {"Oreshnik": {date(2026, 11, 20): 1}},
    }
    digest = await store.mention_counts({1: moscow}, since, until, digest_queries=True)
    assert "Kinzhal" not in digest[1]
    assert digest[1]["Oreshnik"] == counts[1]["Oreshnik"]
    # [since, until): matched at or after the end is not counted.
    assert await store.mention_counts({1: moscow}, until, datetime.now(UTC)) == {}
    assert await store.mention_counts({}, since, until) == {}


async def test_a_post_counts_on_its_day_before_or_after_the_clocks_changed(store: Storage) -> None:
    (query,) = await _chat(store, 1, "Oreshnik")
    change = datetime(2026, 10, 25, 1, tzinfo=UTC)  # Berlin: CEST (+120) to CET (+60)
    since = await store.write_barrier()
    await _matched(store, 1, [query], datetime(2026, 10, 20, 22, 30, tzinfo=UTC))  # 21st CEST
    await _matched(store, 2, [query], datetime(2026, 10, 28, 23, 30, tzinfo=UTC))  # 29th CET
    await _matched(store, 3, [query], change - timedelta(seconds=1))  # 02:59:59 CEST, the 25th
    until = await store.write_barrier()
    counts = await store.mention_counts({1: (120, change, 60)}, since, until)
    assert counts == {
        1: {"Oreshnik": {date(2026, 10, 21): 1, date(2026, 10, 25): 1, date(2026, 10, 29): 1}}
    }


async def test_a_removed_query_is_no_longer_charted(store: Storage) -> None:
    oreshnik, sarmat = await _chat(store, 1, "Oreshnik", "Sarmat")
    since = await store.write_barrier()
    await _matched(store, 1, [oreshnik, sarmat])
    until = await store.write_barrier()
    await store.remove_subscription(oreshnik.id)
    counts = await store.mention_counts({1: (0, None, 0)}, since, until)
    assert counts == {1: {"Sarmat": {DAY.date(): 1}}}


async def test_the_queries_of_each_chat_in_the_order_saved(store: Storage) -> None:
    await _chat(store, 1, "Sarmat", "Oreshnik", "Burevestnik")
    await _chat(store, 2, "INF")
    await _chat(store, 3)
    assert await store.query_order([2, 1, 3, 1, 9]) == {
        1: ["Sarmat", "Oreshnik", "Burevestnik"],
        2: ["INF"],
    }
    assert await store.query_order([]) == {}


async def test_nothing_is_left_to_merge_once_read(store: Storage) -> None:
    (query,) = await _chat(store, 1, "Oreshnik")
    since = await store.write_barrier()
    await _matched(store, 1, [query])
    until = await store.write_barrier()  # merges what SQLite staged
    assert await store.merge_matches() == 0
    assert _numbers(await store.digest_entries(1, since, until)) == ["1"]


# --- queueing a digest ---------------------------------------------------------------------


async def test_a_digest_is_queued_after_the_chats_alerts_and_moves_its_marks(
    store: Storage,
) -> None:
    (query,) = await _chat(store, 1, "Oreshnik")
    await _chat(store, 2)
    await _matched(store, 1, [query])  # an alert not filed yet
    nxt = DAY + timedelta(days=1)
    await store.queue_digests(
        [
            QueuedDigest(1, ("<b>Digest</b> one", "<b>Digest</b> two"), DAY, '{"c": 1}', nxt),
            QueuedDigest(2, (), DAY, None, nxt),  # nothing to say: only the marks move
        ]
    )
    await _matched(store, 2, [query])  # after the digest
    pending = await store.pending_messages(datetime.now(UTC) + timedelta(days=2))
    assert [(m.chat_id, m.kind, m.text, m.media) for m in pending] == [
        (1, "alert", None, None),
        (1, "digest", "<b>Digest</b> one", None),
        (1, "digest", "<b>Digest</b> two", None),
        (1, "digest", '{"c": 1}', MEDIA_CHART),
        (1, "alert", None, None),
    ]
    assert [m.post.post.post_id for m in pending if m.post is not None] == ["1", "2"]
    for chat_id in (1, 2):
        found = await store.get_subscriber(chat_id)
        assert found is not None
        assert (found.last_digest_at, found.next_digest_at) == (DAY, nxt)


async def test_a_digest_without_a_next_time_leaves_the_schedule_alone(store: Storage) -> None:
    await _chat(store, 1)
    await store.schedule_digests([(1, DAY + timedelta(hours=1))])
    await store.queue_digest(1, ["<b>Digest</b>"], DAY)
    found = await store.get_subscriber(1)
    assert found is not None
    assert (found.last_digest_at, found.next_digest_at) == (DAY, DAY + timedelta(hours=1))
    (message,) = await store.pending_messages(datetime.now(UTC) + timedelta(minutes=1))
    assert (message.kind, message.text, message.post, message.attempts) == (
        "digest",
        "<b>Digest</b>",
        None,
        0,
    )
    await store.queue_digests([])  # nothing at all


# --- the barrier ---------------------------------------------------------------------------


async def test_the_barrier_waits_for_a_write_in_progress(postgres_url: str) -> None:
    """PostgreSQL only: a worker's transaction that is writing `matches` when the barrier is
    asked for ends before the barrier's moment is taken, and its time is before it."""
    store = await PostgresStorage.open(postgres_url)
    try:
        async with await psycopg.AsyncConnection.connect(postgres_url) as writer:
            await writer.execute("LOCK TABLE matches IN ROW EXCLUSIVE MODE")  # as an INSERT
            barrier = asyncio.create_task(store.write_barrier())
            while not await _barrier_waits(postgres_url):
                assert not barrier.done()
                await asyncio.sleep(0.01)
            cursor = await writer.execute("SELECT clock_timestamp()")
            row = await cursor.fetchone()
            assert row is not None
            stamped: datetime = row[0]
            await writer.commit()
        assert await barrier > stamped
    finally:
        await store.close()


async def _barrier_waits(url: str) -> bool:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT 1 FROM pg_locks WHERE relation = 'matches'::regclass"
            " AND mode = 'ShareLock' AND NOT granted"
        )
        return await cursor.fetchone() is not None


# --- /export -------------------------------------------------------------------------------


async def test_export_pages_newest_first_with_every_query_in_the_chats_order(
    store: Storage,
) -> None:
    oreshnik, kinzhal, sarmat = await _chat(
        store, 1, "Oreshnik", "Kinzhal", "Sarmat", Kinzhal=MODE_INSTANT, Sarmat=MODE_DIGEST
    )
    (other,) = await _chat(store, 2, "Oreshnik")
    await _matched(store, 0, [oreshnik], DAY - timedelta(days=40))
    since = await store.write_barrier()
    await _matched(store, 1, [sarmat, kinzhal], DAY - timedelta(hours=3))
    await _matched(store, 2, [oreshnik, other], DAY - timedelta(hours=1))
    await _matched(store, 3, [oreshnik], DAY - timedelta(hours=2))
    await _matched(store, 4, [kinzhal], DAY - timedelta(hours=2))  # same date: by id
    await _matched(store, 5, [other], DAY)  # another chat's
    await store.mark_deleted("tgweb", "rybar", "3")

    first = await store.matched_posts(1, since, 2)
    assert _numbers(first) == ["2", "4"]
    last = first[-1].post
    rest = await store.matched_posts(1, since, 10, before=(last.post.date, last.id))
    assert _numbers(rest) == ["3", "1"]
    assert rest[0].post.deleted
    assert rest[1].queries == ("Kinzhal", "Sarmat")  # every mode, in the order saved
    assert [e.queries for e in first] == [("Oreshnik",), ("Kinzhal",)]
    everything = await store.matched_posts(1, since - timedelta(days=1), 10)
    assert _numbers(everything) == ["2", "4", "3", "1", "0"]
    assert await store.matched_posts(1, datetime.now(UTC) + timedelta(hours=1), 10) == []


@pytest.mark.parametrize("limit", [1, 3])
async def test_export_pages_end_where_the_posts_do(store: Storage, limit: int) -> None:
    (query,) = await _chat(store, 1, "Oreshnik")
    since = await store.write_barrier()
    for number in range(5):
        await _matched(store, number, [query], DAY + timedelta(minutes=number))
    seen: list[str] = []
    before: tuple[datetime, int] | None = None
    while page := await store.matched_posts(1, since, limit, before=before):
        seen += _numbers(page)
        before = (page[-1].post.post.date, page[-1].post.id)
    assert seen == ["4", "3", "2", "1", "0"]


# --- the digest job, whole -----------------------------------------------------------------


async def test_the_digest_job_queues_a_digest_and_its_chart_once(store: Storage) -> None:
    (query,) = await _chat(store, 1, "Oreshnik")
    await _chat(store, 2, "Sarmat")  # nothing matched: no digest
    await _matched(store, 1, [query], datetime.now(UTC) - timedelta(hours=1))
    while await store.file_alerts():
        pass
    (alert,) = await store.pending_messages(datetime.now(UTC) + timedelta(minutes=1))
    await store.mark_sent(alert.id)

    now = await store.write_barrier()
    assert await queue_digests(store, now, time(8, 0), UTC, force=True) == 1
    pending = await store.pending_messages(now + timedelta(minutes=1))
    assert [(m.chat_id, m.kind, m.media) for m in pending] == [
        (1, "digest", None),
        (1, "digest", MEDIA_CHART),
    ]
    assert "Oreshnik" in (pending[0].text or "")
    marks = [await store.get_subscriber(chat_id) for chat_id in (1, 2)]
    assert [m.last_digest_at if m else None for m in marks] == [now, None]
    assert await queue_digests(store, await store.write_barrier(), time(8), UTC, force=True) == 0
