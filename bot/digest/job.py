"""The digest job: the chats due, a batch at a time, read, written and queued, with the event
loop given a turn every few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time as timer
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from bot.delivery.chats import chat_texts, chat_zone
from bot.digest.cache import CompiledQueries, DigestCache
from bot.digest.render import quiet_digest, render_digest
from bot.digest.schedule import digest_due, digest_time, next_slot
from bot.digest.trend import chart_for, chart_shift, chart_window
from bot.domain import DigestEntry, StoredPost, Subscriber
from bot.i18n import Catalog
from bot.storage import QueuedDigest, Storage, ZoneShift

log = logging.getLogger(__name__)

DEFAULT_WINDOW = timedelta(hours=24)  # a chat's first digest covers the day before
BATCH = 500  # chats prepared per read and per transaction
SLICE = 0.01  # seconds of preparing before the event loop gets a turn
FULL_COLLECTION_DEFERRED = 1_000_000  # gen-1 passes before a full one, while a job runs
RELEASE_SLICE = 500  # cached entries freed between two turns of the event loop
POSTS_KEPT = 20_000  # posts a job keeps read for the chats of its later batches


@dataclass
class _Due:
    subscriber: Subscriber
    since: datetime
    next_at: datetime | None


class _Slicer:
    """Gives the event loop a turn whenever preparing has held it for SLICE seconds."""

    def __init__(self, clock: Callable[[], float] = timer.perf_counter) -> None:
        self._clock = clock
        self._since = clock()

    async def __call__(self) -> None:
        if self._clock() - self._since >= SLICE:
            await asyncio.sleep(0)
            self._since = self._clock()


async def queue_digests(
    storage: Storage,
    now: datetime,
    at: time,
    tz: tzinfo,
    *,
    force: bool = False,
    chat_id: int | None = None,
    catalog: Catalog | None = None,
    index: CompiledQueries | None = None,
    cache: DigestCache | None = None,
) -> int:
    """Queue the digest of every chat that is due (every chat with something to report,
    with `force`; only `chat_id`, when given); returns how many digests were queued.

    `at` and `tz` are the service's digest time and zone, for chats that chose none;
    `index` the service's compiled queries (its matcher), which find the words to bold. The
    service passes as `now` a moment no write still in progress was stamped before
    (`Storage.write_barrier`), so no match falls between two digests.
    """
    job = _Job(storage, now, tz, catalog or Catalog(), cache or DigestCache(index))
    with young_collections_only():
        try:
            return await _queue(job, at, force=force, chat_id=chat_id)
        finally:
            # Freed a slice at a time: dropped at once, tens of thousands of cached objects
            # held the event loop for ~50 ms.
            await _release([*job.cache.stores(), job.posts])


async def _release(stores: list[MutableMapping[Any, Any]]) -> None:
    for store in stores:
        while store:
            for _ in range(min(RELEASE_SLICE, len(store))):
                store.popitem()
            await asyncio.sleep(0)


@contextlib.contextmanager
def young_collections_only() -> Iterator[None]:
    """No full garbage collection while a job runs: each walks every object the job holds
    (its caches of words and posts), tens of milliseconds at a time, dozens of times in a
    job for 10,000 chats. The job's objects are freed by reference counting when it ends;
    the young generations are still collected meanwhile."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_DEFERRED)
    try:
        yield
    finally:
        gc.set_threshold(young, middle, old)


async def _queue(job: _Job, at: time, *, force: bool, chat_id: int | None) -> int:
    storage, now = job.storage, job.now
    queued = 0
    pages = _forced_pages(storage, now, chat_id) if force else _due_pages(storage, now, at, job.tz)
    # Pipelined: the next batch's posts are read (SQLite works on its own thread) while this
    # batch's digests are written.
    current = await anext(pages, None)
    reading = asyncio.create_task(job.read(current)) if current is not None else None
    storing: asyncio.Task[None] | None = None
    while current is not None and reading is not None:
        batch_found = await reading
        following = await anext(pages, None)
        reading = asyncio.create_task(job.read(following)) if following is not None else None
        # The batch is stored while the next one is written (one store at a time).
        digests, count = await job.render(current, batch_found)
        if storing is not None:
            await storing
        storing = asyncio.create_task(storage.queue_digests(digests))
        queued += count
        current = following
    if storing is not None:
        await storing
    return queued


async def _forced_pages(
    storage: Storage, now: datetime, chat_id: int | None
) -> AsyncIterator[list[_Due]]:
    """Every active chat (or only `chat_id`), a batch at a time, due now whatever its time
    (`digest --now`: no next due time is stored)."""
    if chat_id is None:
        chosen = await storage.active_subscribers()
    else:
        found = await storage.get_subscriber(chat_id)
        chosen = [found] if found is not None and found.active else []
    for start in range(0, len(chosen), BATCH):
        yield [
            _Due(s, s.last_digest_at or now - DEFAULT_WINDOW, None)
            for s in chosen[start : start + BATCH]
        ]


async def _due_pages(
    storage: Storage, now: datetime, at: time, tz: tzinfo
) -> AsyncIterator[list[_Due]]:
    """The chats due now, a batch at a time (keyset pages of the due-time index); those
    whose due time was not known and turn out not to be due are scheduled on the way."""
    after: tuple[datetime | None, int] | None = None
    while True:
        batch = await storage.due_for_digest(now, BATCH, after=after)
        if not batch:
            return
        after = (batch[-1].next_digest_at, batch[-1].chat_id)
        due: list[_Due] = []
        later: list[tuple[int, datetime]] = []
        for subscriber in batch:
            zone = chat_zone(subscriber, tz)
            upcoming = next_slot(now, digest_time(subscriber, at), zone)
            if subscriber.next_digest_at is None and not digest_due(subscriber, now, at, tz):
                later.append((subscriber.chat_id, upcoming))
                continue
            since = subscriber.last_digest_at or now - DEFAULT_WINDOW
            due.append(_Due(subscriber, since, upcoming))
        await storage.schedule_digests(later)
        if due:
            yield due


@dataclass(frozen=True, slots=True)
class _Found:
    """What one batch's digests are written from."""

    entries: dict[int, list[DigestEntry]]
    counts: dict[int, dict[str, dict[date, int]]]
    order: dict[int, list[str]]


@dataclass
class _Job:
    """One run of the digest job: what it shares between its batches."""

    storage: Storage
    now: datetime
    tz: tzinfo
    catalog: Catalog
    cache: DigestCache
    slicer: _Slicer = field(default_factory=lambda: _Slicer())
    shifts: dict[str, ZoneShift] = field(default_factory=dict)
    posts: dict[int, StoredPost] = field(default_factory=dict)  # read once for every chat

    def _shift(self, zone: tzinfo) -> ZoneShift:
        key = str(zone)
        if key not in self.shifts:
            self.shifts[key] = chart_shift(self.now, zone)
        return self.shifts[key]

    async def read(self, due: Sequence[_Due]) -> _Found:
        """Everything a batch's digests are made of, in three reads."""
        storage, now = self.storage, self.now
        enabled = [d for d in due if d.subscriber.digest_enabled]
        if len(self.posts) > POSTS_KEPT:
            self.posts.clear()
        entries = await storage.digest_entries_of(
            {d.subscriber.chat_id: d.since for d in enabled}, now, known=self.posts
        )
        charted = {
            d.subscriber.chat_id: self._shift(chat_zone(d.subscriber, self.tz))
            for d in enabled
            if d.subscriber.digest_chart
            and (d.subscriber.chat_id in entries or d.subscriber.digest_quiet_days)
        }
        _, read_from, read_to = chart_window(now, self.tz)
        counts = await storage.mention_counts(charted, read_from, read_to, digest_queries=True)
        order = await storage.query_order(list(entries))
        return _Found(entries, counts, order)

    async def render(self, due: Sequence[_Due], found: _Found) -> tuple[list[QueuedDigest], int]:
        """The batch's digests (and marks to move), and how many have messages."""
        forced = bool(due) and due[0].next_at is None
        digests: list[QueuedDigest] = []
        queued = 0
        for item in due:
            await self.slicer()
            chat = item.subscriber.chat_id
            digest = self._digest(item, found.entries.get(chat, []), found.order, found.counts)
            if forced and not digest.parts:
                continue  # `digest --now` with nothing to say: the chat's mark stays
            digests.append(digest)
            queued += bool(digest.parts)
        return digests, queued

    def _digest(
        self,
        item: _Due,
        found: list[DigestEntry],
        order: Mapping[int, list[str]],
        counts: Mapping[int, Mapping[str, Mapping[date, int]]],
    ) -> QueuedDigest:
        subscriber, now = item.subscriber, self.now
        chat = subscriber.chat_id
        if not subscriber.digest_enabled or not (found or subscriber.digest_quiet_days):
            return QueuedDigest(chat, (), now, None, item.next_at)  # the mark moves
        t = chat_texts(self.catalog, subscriber)
        zone = chat_zone(subscriber, self.tz)
        if found:
            parts = render_digest(
                found, item.since, now, t, zone, queries=order.get(chat), cache=self.cache
            )
            log.info("digest for chat %d: %d post(s)", chat, len(found))
        else:
            parts = [quiet_digest(t, item.since, now, zone)]
        chart = chart_for(counts.get(chat, {}), t, now, zone) if subscriber.digest_chart else None
        return QueuedDigest(chat, tuple(parts), now, chart, item.next_at)
