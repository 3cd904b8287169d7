"""RETENTION_DAYS: old posts go with their matches, finished alerts and index entries, in
batches that let other writes in; waiting alerts keep their posts; the setting and the job."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

import bot.storage.sqlite as sqlite_module
from bot.app import prune_expired, schedule_pruning
from bot.config import Settings, SettingsError, load_settings
from bot.domain import Post, Span
from bot.storage import Storage
from bot.storage.sqlite import KEEP_PER_SOURCE, MatchRecord, Pruned

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAYS = 30


class Clock:
    """The storage's clock (what `stored_at`, `updated_at` and `sent_at` record), moved by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(START)
    monkeypatch.setattr(sqlite_module, "_now", lambda: clock.now)
    return clock


def _post(post_id: str, date: datetime, text: str = "Oreshnik launched") -> Post:
    return Post("jsonl", "ch", post_id, date, text, f"https://t.me/ch/{post_id}")


async def _subscribe(storage: Storage, chat_id: int, query: str = "Oreshnik") -> MatchRecord:
    await storage.upsert_subscriber(chat_id, f"user {chat_id}")
    subscription = await storage.add_subscription(chat_id, query)
    assert subscription is not None
    return MatchRecord(subscription.id, chat_id, query, (Span(0, 8),))


async def _deliver_all(storage: Storage, now: datetime) -> None:
    """What the sender does: every waiting message is sent."""
    await storage.mark_sent([message.id for message in await storage.pending_messages(now)])


def _cutoff(now: datetime) -> datetime:
    return now - timedelta(days=DAYS)


# --- what goes and what stays ----------------------------------------------------------


async def test_old_posts_go_with_their_matches_and_sent_alerts(
    storage: Storage, clock: Clock
) -> None:
    match = await _subscribe(storage, 1)
    await storage.save_post(_post("old", START), [match])
    await storage.save_post(_post("old-unmatched", START, "weather"), [])
    await _deliver_all(storage, clock.now)
    now = clock.advance(days=DAYS + 1)
    await storage.save_post(_post("new", now), [match])
    await _deliver_all(storage, now)

    assert await storage.prune(_cutoff(now)) == Pruned(posts=2, matches=1, messages=1)

    assert await storage.get_post("jsonl", "ch", "old") is None
    assert await storage.get_post("jsonl", "ch", "new") is not None
    entries = await storage.digest_entries(1, START - timedelta(days=1), now)
    assert [entry.post.post.post_id for entry in entries] == ["new"]
    assert await storage.outbox_counts() == {"pending": 0, "sent": 1, "failed": 0}
    assert await storage.prune(_cutoff(now)) == Pruned()  # nothing left to do


async def test_nothing_within_the_period_goes(storage: Storage, clock: Clock) -> None:
    match = await _subscribe(storage, 1)
    await storage.save_post(_post("1", START), [match])
    await _deliver_all(storage, clock.now)
    now = clock.advance(days=DAYS - 1)
    assert await storage.prune(_cutoff(now)) == Pruned()
    assert await storage.count_posts() == 1


async def test_an_archive_read_late_is_kept_for_the_full_period_after_storing(
    storage: Storage, clock: Clock
) -> None:
    # A feed read for the first time brings entries dated long ago: they stay searchable
    # for RETENTION_DAYS from the day they were stored, not from their own date.
    await storage.save_post(_post("archive", START - timedelta(days=400)), [])
    now = clock.advance(days=DAYS - 1)
    assert await storage.prune(_cutoff(now)) == Pruned()
    now = clock.advance(days=2)
    assert await storage.prune(_cutoff(now)) == Pruned(posts=1)


async def test_an_edit_starts_the_period_again(storage: Storage, clock: Clock) -> None:
    await storage.save_post(_post("1", START, "Oreshnik launched"), [])
    clock.advance(days=20)
    await storage.save_post(_post("1", START, "Oreshnik launched from Kapustin Yar"), [])
    now = clock.advance(days=DAYS - 10)  # 30 days after storing, 10 after the edit
    assert await storage.prune(_cutoff(now)) == Pruned()
    now = clock.advance(days=DAYS)
    assert await storage.prune(_cutoff(now)) == Pruned(posts=1)


@pytest.mark.parametrize("finished", ["sent", "set aside"])
async def test_a_waiting_alert_keeps_its_post_until_it_is_sent_or_set_aside(
    storage: Storage, clock: Clock, finished: str
) -> None:
    first, second = await _subscribe(storage, 1), await _subscribe(storage, 2)
    await storage.save_post(_post("1", START), [first, second])
    waiting = await storage.pending_messages(clock.now)
    await storage.mark_sent(next(m.id for m in waiting if m.chat_id == 1))
    # Chat 2 is muted for weeks (or Telegram keeps refusing): its alert still waits.
    await storage.hold_alerts(2, START + timedelta(days=60))
    now = clock.advance(days=DAYS + 1)

    assert await storage.prune(_cutoff(now)) == Pruned()
    assert await storage.count_posts() == 1

    held = next(m.id for m in await storage.pending_messages(START + timedelta(days=61)))
    if finished == "sent":
        await storage.mark_sent(held)
    else:
        await storage.set_aside(held, "Bad Request: chat not found")
    assert await storage.prune(_cutoff(now)) == Pruned(posts=1, matches=2, messages=2)
    assert await storage.outbox_counts() == {"pending": 0, "sent": 0, "failed": 0}


async def test_old_finished_digests_go_waiting_and_recent_ones_stay(
    storage: Storage, clock: Clock
) -> None:
    await storage.upsert_subscriber(1, "user 1")
    await storage.queue_digest(1, ["sent long ago"], START)
    await _deliver_all(storage, clock.now)
    await storage.queue_digest(1, ["set aside long ago"], START)
    aside = await storage.pending_messages(clock.now)
    await storage.set_aside([m.id for m in aside], "Bad Request: message is too long")
    await storage.queue_digest(1, ["waiting since long ago"], START)
    clock.advance(days=DAYS)
    await storage.queue_digest(1, ["sent recently"], clock.now)
    now = clock.advance(days=2)
    recent = [m for m in await storage.pending_messages(now) if m.text == "sent recently"]
    await storage.mark_sent([m.id for m in recent])

    assert await storage.prune(_cutoff(now)) == Pruned(messages=2)
    left = await storage.pending_messages(now)
    assert [m.text for m in left] == ["waiting since long ago"]
    assert await storage.outbox_counts() == {"pending": 1, "sent": 1, "failed": 0}


async def test_a_pruned_post_leaves_the_full_text_index(
    storage: Storage, clock: Clock, tmp_path: Path
) -> None:
    await storage.save_post(_post("old", START, "Oreshnik launched from Kapustin Yar"), [])
    now = clock.advance(days=DAYS + 1)
    await storage.save_post(_post("new", now, "Oreshnik again"), [])
    assert await storage.count_candidates('"kapustin"') == 1

    await storage.prune(_cutoff(now))

    assert [p.post.post_id for p in await storage.search_posts(["Oreshnik"])] == ["new"]
    # Asked of the index alone (as /search counts its candidates): the entry is gone.
    assert await storage.count_candidates('"kapustin"') == 0
    assert await storage.count_candidates('"oreshnik"') == 1
    with sqlite3.connect(tmp_path / "dozor.sqlite3") as raw:
        # FTS5 compares the index with the posts table and raises on any difference.
        raw.execute("INSERT INTO posts_fts (posts_fts, rank) VALUES ('integrity-check', 1)")


async def test_each_source_keeps_its_newest_posts(storage: Storage, clock: Clock) -> None:
    source_id = await storage.ensure_source("jsonl:/srv/quiet.jsonl", "jsonl")
    for n in range(KEEP_PER_SOURCE + 9):  # a quiet source: one post a day
        await storage.save_post(_post(str(n), clock.now), [], source_id=source_id)
        clock.advance(days=1)
    newest = clock.now - timedelta(days=1)
    now = clock.advance(days=DAYS * 3)

    assert await storage.prune(_cutoff(now)) == Pruned(posts=9)

    # /sources still tells when the source last posted and how often it usually does.
    (info,) = await storage.list_sources()
    assert info.last_post_at == newest
    assert info.usual_gap == timedelta(days=1)


# --- batches -----------------------------------------------------------------------------


async def test_a_large_prune_runs_in_batches_that_let_other_writes_in(
    storage: Storage, clock: Clock
) -> None:
    for n in range(2_000):
        await storage.save_post(_post(str(n), START - timedelta(minutes=n)), [])
    now = clock.advance(days=DAYS + 1)
    statements: list[str] = []
    await storage._db.set_trace_callback(statements.append)

    pruning = asyncio.create_task(storage.prune(_cutoff(now)))
    await asyncio.sleep(0)  # the prune holds the first batch's transaction
    await storage.save_post(_post("fresh", now), [])  # a post arriving meanwhile
    assert not pruning.done()
    pruned = await pruning
    await storage._db.set_trace_callback(None)

    assert pruned == Pruned(posts=2_000)
    assert await storage.count_posts() == 1
    transactions = _transactions(statements)
    batches = [n for n, done in enumerate(transactions) if "DELETE FROM posts" in done]
    (stored,) = [n for n, done in enumerate(transactions) if "INSERT INTO posts" in done]
    assert len(batches) == 4
    assert batches[0] < stored < batches[-1]  # the new post was written between two batches


def _transactions(statements: list[str]) -> list[set[str]]:
    """The statements traced, grouped by transaction, each known by its first three words."""
    grouped: list[set[str]] = []
    for sql in statements:
        if sql == "BEGIN IMMEDIATE":
            grouped.append(set())
        elif grouped:
            grouped[-1].add(" ".join(sql.split()[:3]))
    return grouped


# --- the setting -------------------------------------------------------------------------


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No real setting and no `.env` in the working folder may leak into a settings test."""
    names = {name.upper() for name in Settings.model_fields}
    for name in list(os.environ):
        if name.upper() in names:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_retention_is_off_by_default(environment: pytest.MonkeyPatch) -> None:
    assert load_settings(None).retention_days == 0


@pytest.mark.parametrize(("raw", "days"), [("", 0), ("  ", 0), ("0", 0), ("30", 30), (" 7 ", 7)])
def test_retention_days_are_read(environment: pytest.MonkeyPatch, raw: str, days: int) -> None:
    environment.setenv("RETENTION_DAYS", raw)
    assert load_settings(None).retention_days == days


@pytest.mark.parametrize("raw", ["-1", "30d", "1.5", "thirty", "36501", "٣٠"])
def test_a_malformed_retention_is_named_in_one_line(
    environment: pytest.MonkeyPatch, raw: str
) -> None:
    environment.setenv("RETENTION_DAYS", raw)
    with pytest.raises(SettingsError) as caught:
        load_settings(None)
    assert str(caught.value) == (
        "invalid setting RETENTION_DAYS: expected a number of days from 1 to 36500, such as 30"
        f" (0 or empty: keep posts forever), got {raw!r}"
    )


def test_the_example_settings_document_it() -> None:
    lines = (Path(__file__).parent.parent / ".env.example").read_text(encoding="utf-8")
    before, found, _ = lines.partition("\nRETENTION_DAYS=\n")
    assert found
    assert before.splitlines()[-1].startswith("#")  # with a comment saying what it does


# --- the job -----------------------------------------------------------------------------


@pytest.fixture
async def scheduler() -> AsyncIterator[Any]:
    scheduler = AsyncIOScheduler(timezone=UTC)
    yield scheduler
    if scheduler.running:
        scheduler.shutdown(wait=False)


async def test_the_service_prunes_every_ten_minutes_only_when_retention_is_set(
    storage: Storage, scheduler: Any
) -> None:
    running: set[asyncio.Task[Any]] = set()
    schedule_pruning(scheduler, storage, 0, running)
    assert scheduler.get_job("prune") is None

    schedule_pruning(scheduler, storage, DAYS, running)
    job = scheduler.get_job("prune")
    assert job.trigger.interval == timedelta(minutes=10)
    # The first run comes soon after start, not ten minutes later.
    assert job.next_run_time - datetime.now(UTC) < timedelta(minutes=2)


async def test_the_job_prunes_logs_once_and_stops_for_shutdown(
    storage: Storage, clock: Clock, scheduler: Any, caplog: pytest.LogCaptureFixture
) -> None:
    clock.now = datetime.now(UTC) - timedelta(days=DAYS + 1)
    await storage.save_post(_post("old", clock.now), [])
    running: set[asyncio.Task[Any]] = set()
    schedule_pruning(scheduler, storage, DAYS, running)
    job = scheduler.get_job("prune")
    scheduler.start()

    scheduler.pause()  # what shutdown does first: a run stops before its next batch
    await job.func()
    assert await storage.count_posts() == 1

    scheduler.resume()
    with caplog.at_level(logging.INFO, logger="bot.app"):
        await job.func()
        await job.func()  # nothing left: nothing said
    assert await storage.count_posts() == 0
    said = [r.getMessage() for r in caplog.records if r.name == "bot.app"]
    assert said == ["retention of 30 days: pruned 1 post(s), 0 match(es) and 0 sent message(s)"]
    assert not running  # a finished run is no longer awaited at shutdown


async def test_a_failed_run_is_logged_and_the_next_one_finishes(
    storage: Storage, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    await storage.save_post(_post("old", START), [])
    now = clock.advance(days=DAYS + 1)
    await storage._db.execute("PRAGMA query_only = ON")  # writes refused, as on a full disk
    with caplog.at_level(logging.WARNING, logger="bot.app"):
        assert await prune_expired(storage, DAYS, now) is None
    assert "tried again in 10 minutes" in caplog.text
    assert await storage.count_posts() == 1

    await storage._db.execute("PRAGMA query_only = OFF")
    assert await prune_expired(storage, DAYS, now) == Pruned(posts=1)


async def test_an_edit_of_a_pruned_post_is_stored_without_alerting_again(
    storage: Storage,
) -> None:
    # A post older than RETENTION_DAYS that is not stored was pruned: read again (its
    # channel edited it), it is kept quietly, not taken for news; a recent one still alerts.
    from bot.ingest import Ingest, Matcher

    await _subscribe(storage, 1)
    matcher = Matcher(storage)
    await matcher.refresh()
    ingest = Ingest(storage, matcher, asyncio.Event(), retention=timedelta(days=DAYS))
    now = datetime.now(UTC)
    old = await ingest.handle(_post("1", now - timedelta(days=DAYS + 5), "Oreshnik, edited"))
    recent = await ingest.handle(_post("2", now - timedelta(days=DAYS - 5), "Oreshnik again"))
    assert (old.created, old.alerts_queued) == (True, 0)
    assert (recent.created, recent.alerts_queued) == (True, 1)
    without = Ingest(storage, matcher, asyncio.Event())  # keep forever: the rule is off
    assert (await without.handle(_post("3", now - timedelta(days=400)))).alerts_queued == 1


async def test_a_periodic_job_that_overruns_is_logged_not_skipped_silently(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bot.app import watch_overruns

    release = asyncio.Event()
    started = asyncio.Event()

    async def slow_job() -> None:
        started.set()
        await release.wait()

    scheduler = AsyncIOScheduler(timezone=UTC)
    watch_overruns(scheduler)
    scheduler.add_job(
        slow_job,
        "interval",
        seconds=0.05,
        next_run_time=datetime.now(UTC),
        max_instances=1,
        id="digests",
    )
    with caplog.at_level(logging.WARNING, logger="bot.app"):
        scheduler.start()
        try:
            await asyncio.wait_for(started.wait(), 30)
            for _ in range(3000):  # until the next run is due and skipped (bounded)
                if any(r.name == "bot.app" for r in caplog.records):
                    break
                await asyncio.sleep(0.01)
        finally:
            release.set()
            scheduler.shutdown(wait=False)
    record = next(r for r in caplog.records if r.name == "bot.app")
    assert "'digests'" in record.getMessage()
    assert "the previous run is still going" in record.getMessage()


async def test_sent_messages_leave_the_outbox_after_a_while_but_stay_counted(
    storage: Storage, clock: Clock
) -> None:
    # The outbox keeps a sent row for SENT_KEPT, a set-aside one for FAILED_KEPT; the day's
    # count of alerts sent (/stats) outlives the rows; nothing waiting is ever touched.
    match = await _subscribe(storage, 1)
    for number in range(4):
        await storage.save_post(_post(str(number), clock.now), [match])
    first, second, third, fourth = await storage.pending_messages(clock.now)
    await storage.mark_sent([first.id, second.id])
    await storage.set_aside(third.id, "refused")
    clock.advance(hours=2)
    assert await storage.prune_finished(clock.now - timedelta(hours=1), START) == 2
    assert await storage.prune_finished(clock.now - timedelta(hours=1), START) == 0
    assert await storage.outbox_counts() == {"pending": 1, "sent": 0, "failed": 1}
    assert [m.id for m in await storage.pending_messages(clock.now)] == [fourth.id]
    assert (await storage.service_counts(START))["alerts"] == 2
    clock.advance(days=8)
    assert await storage.prune_finished(clock.now, clock.now - timedelta(days=7)) == 1
    assert await storage.outbox_counts() == {"pending": 1, "sent": 0, "failed": 0}
