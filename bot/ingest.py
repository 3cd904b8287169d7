"""The ingest stage: a post from any source is cleaned, matched and stored with its alerts."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from bot.domain import MODE_DIGEST, Post, Span, Subscription, clean_text, clean_title
from bot.logs import log_context
from bot.matching import Hit, QueryIndex
from bot.matching.index import PostView
from bot.metrics import Metrics
from bot.storage import SaveResult, Storage
from bot.storage.records import MatchRecord

log = logging.getLogger(__name__)
T = TypeVar("T")

GIL_SWITCH_INTERVAL = 0.001  # seconds; see Matcher

# How far before a source was added its posts still count as news (see `SourceFeed`).
NEWS_BEFORE_ADDED = timedelta(hours=24)


class Matcher:
    """The live subscription index; rebuilt from storage whenever subscriptions change.

    Matching is CPU work (tokenising, folding, evaluating queries, RE2 over long posts), so it
    runs on one worker thread, off the event loop: replies and sends go on while a long post
    is matched. Changes to the index run on the same thread, so they never interleave with a
    match in progress.
    """

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._index = QueryIndex()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="matcher")
        # The loop thread waits for the GIL up to a switch interval each time it wakes while
        # the matcher computes: 1 ms instead of Python's 5 ms halves the loop's stalls.
        if sys.getswitchinterval() > GIL_SWITCH_INTERVAL:
            sys.setswitchinterval(GIL_SWITCH_INTERVAL)

    async def _on_thread(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    async def refresh(self) -> None:
        """Rebuild from every active subscription (at start)."""
        subscriptions = await self._storage.active_subscriptions()

        def build() -> QueryIndex:
            index = QueryIndex(expander=self._index.expander)
            for subscription in subscriptions:
                self._add(index, subscription)
            return index

        self._index = await self._on_thread(build)

    @staticmethod
    def _add(index: QueryIndex, subscription: Subscription) -> None:
        try:
            index.add(subscription)
        except ValueError as exc:  # a query saved under older rules that no longer parses
            log.warning("subscription %d skipped: %s", subscription.id, exc)

    async def add(self, subscription: Subscription) -> None:
        """Start matching a subscription at once (a new one, or a returning chat's; an id
        already filed is replaced)."""
        await self._on_thread(lambda: self._add(self._index, subscription))

    async def remove(self, subscription_id: int) -> None:
        await self._on_thread(lambda: self._index.remove(subscription_id))

    async def follow_chat(self, chat_id: int) -> None:
        """Re-read one chat's subscriptions into the index: another worker changed them (a
        query added, removed or paused, the chat blocked or back, moved to a new id)."""
        subscriber = await self._storage.get_subscriber(chat_id)
        current: list[Subscription] = []
        if subscriber is not None and subscriber.active:
            current = [s for s in await self._storage.subscriptions_of(chat_id) if not s.paused]
        kept = {subscription.id for subscription in current}

        def apply() -> None:
            for subscription_id in self._index.ids_of_chat(chat_id):
                if subscription_id not in kept:
                    self._index.remove(subscription_id)
            for subscription in current:
                self._add(self._index, subscription)

        await self._on_thread(apply)

    async def find(self, text: str) -> list[Hit]:
        """The subscriptions a text matches, worked out off the event loop."""
        return await self._on_thread(lambda: self._index.match(text))

    async def find_records(self, text: str) -> list[MatchRecord]:
        """`find`, as the records storage takes, made on the matcher's thread too (a popular
        post's hundreds of records would otherwise be made on the event loop)."""
        return await self._on_thread(lambda: _records(self._index.match(text)))

    def match(self, text: str) -> list[Hit]:
        """`find` on the caller's thread (tools and tests; the service uses `find_records`)."""
        return self._index.match(text)

    def spans_of(self, query: str, view: PostView) -> list[Span] | None:
        """`QueryIndex.spans_of` on the caller's thread (the digest's bold words; the
        compiled queries are only read, never changed, here)."""
        return self._index.spans_of(query, view)

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)

    def __len__(self) -> int:
        return len(self._index)


SEEN_POSTS = 20_000  # recent posts whose text Ingest remembers (a hash each)


def _now() -> datetime:
    return datetime.now(UTC)


class Ingest:
    """Stores posts and queues alerts; wakes the outbox worker when there is something to send."""

    def __init__(
        self,
        storage: Storage,
        matcher: Matcher,
        outbox_ready: asyncio.Event,
        *,
        retention: timedelta | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """`retention` is RETENTION_DAYS: a post older than that which is not stored was
        pruned (or never kept); read again (an edit of an old post), it alerts no one.
        `metrics`: where matches and queued alerts are counted (the service's)."""
        self._storage = storage
        self._matcher = matcher
        self._outbox_ready = outbox_ready
        self._retention = retention
        self.metrics = metrics or Metrics()
        self._matches = self.metrics.matches
        self._alerts_queued = self.metrics.alerts_queued
        # The text (as a hash) of the posts handled lately: a source reading the same
        # page again is not matched again, and a new post needs no read of the database
        # first (`save_post` tells new, changed and unchanged apart in its transaction).
        self._seen: OrderedDict[tuple[str, str, str], int] = OrderedDict()

    async def handle(
        self,
        post: Post,
        *,
        source_id: int | None = None,
        cursor: str | None = None,
        alert: bool = True,
    ) -> SaveResult:
        """Store a post; match it and queue its alerts unless `alert` is False (old news:
        stored so /search finds it, but no match is recorded and nobody is told)."""
        with log_context(post=f"{post.source}/{post.channel}/{post.post_id}"):
            return await self._handle(post, source_id=source_id, cursor=cursor, alert=alert)

    async def _handle(
        self, post: Post, *, source_id: int | None, cursor: str | None, alert: bool
    ) -> SaveResult:
        post = replace(
            post, text=clean_text(post.text), channel_title=clean_title(post.channel_title)
        )
        key = (post.source, post.channel, post.post_id)
        text = hash(post.text)
        if alert and self._retention and post.date < _now() - self._retention:
            existing = await self._storage.get_post(*key)
            # Not stored: pruned long ago, and an edit of it is not news; stored and
            # unchanged: nothing to match.
            alert = existing is not None and existing.post.text != post.text
        elif self._seen.get(key) == text:
            alert = False  # read again, unchanged
        records = await self._matcher.find_records(post.text) if alert else []
        result = await self._storage.save_post(post, records, source_id=source_id, cursor=cursor)
        if records:
            self._matches.inc(len(records))
        self._seen[key] = text
        self._seen.move_to_end(key)
        if len(self._seen) > SEEN_POSTS:
            self._seen.popitem(last=False)
        if result.alerts_queued:
            self._alerts_queued.inc(result.alerts_queued)
            log.info(
                "post %s/%s/%s: %d alert(s) queued",
                post.source,
                post.channel,
                post.post_id,
                result.alerts_queued,
            )
            self._outbox_ready.set()
        return result


def _records(hits: list[Hit]) -> list[MatchRecord]:
    return [
        MatchRecord(
            hit.subscription.id,
            hit.subscription.chat_id,
            hit.subscription.query,
            hit.spans,
            hit.subscription.mode == MODE_DIGEST,
        )
        for hit in hits
    ]


def is_news(post: Post, added_at: datetime | None) -> bool:
    """Whether a post read from a source may alert: the one first-read rule of every kind.

    A post published more than `NEWS_BEFORE_ADDED` before its source was added is the
    source's back catalogue (a new channel's latest page, a feed's archive, an account's
    last posts, an old post edited later): it is stored, but raises no alert. Anything
    published after that alerts however late it is read, so a source that catches up
    after downtime misses nothing.
    """
    return added_at is None or post.date >= added_at - NEWS_BEFORE_ADDED


class SourceFeed:
    """A Feed bound to one stored source: posts go to ingest with the source's cursor, and
    only the source's news (`is_news`) alerts.

    Each new post stored is counted for the source (`spec`, its label in the metrics).

    Health: a read that completed (`succeeded`, called by the Poller after a poll and by a
    streaming source after a catch-up) makes the source healthy; a cursor written in the
    middle of a read does not. With `posts_prove_health` (streaming sources that report no
    completed reads, such as a followed file) a stored post counts as a completed read.
    """

    def __init__(
        self,
        ingest: Ingest,
        storage: Storage,
        source_id: int,
        *,
        posts_prove_health: bool = False,
        spec: str | None = None,
    ) -> None:
        self._ingest = ingest
        self._storage = storage
        self._source_id = source_id
        self._posts_prove_health = posts_prove_health
        self._state = ingest.metrics.source(spec or f"source {source_id}")
        self._added_at: datetime | None = None
        self._added_known = False

    async def cursor(self) -> str | None:
        return await self._storage.get_cursor(self._source_id)

    async def deliver(self, post: Post, cursor: str) -> None:
        alert = is_news(post, await self._added())
        if not alert:
            log.debug(
                "post %s/%s/%s predates its source: stored without alerts",
                post.source,
                post.channel,
                post.post_id,
            )
        result = await self._ingest.handle(
            post, source_id=self._source_id, cursor=cursor, alert=alert
        )
        if result.created:
            self._state.stored(post.date)
        if self._posts_prove_health:
            await self._storage.record_source_ok(self._source_id)
            self._state.succeeded()

    async def _added(self) -> datetime | None:
        # Read once: a source re-added later gets a new SourceFeed when it restarts.
        if not self._added_known:
            self._added_at = await self._storage.source_added_at(self._source_id)
            self._added_known = True
        return self._added_at

    async def advance(self, cursor: str) -> None:
        await self._storage.set_cursor(self._source_id, cursor)

    async def delete(self, source: str, channel: str, post_id: str) -> None:
        if not await self._storage.mark_deleted(source, channel, post_id):
            log.info("deletion of %s/%s/%s: post was never stored", source, channel, post_id)

    async def succeeded(self) -> None:
        await self._storage.record_source_ok(self._source_id)
        self._state.succeeded()

    async def failed(self, error: str, *, stopped: bool = False) -> None:
        await self._storage.record_source_error(self._source_id, error, stopped=stopped)
