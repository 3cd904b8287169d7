"""The ingest stage: a post from any source is cleaned, matched and stored with its alerts."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from bot.domain import Post, Subscription, clean_text
from bot.matching import Hit, QueryIndex
from bot.storage import SaveResult, Storage
from bot.storage.sqlite import MatchRecord

log = logging.getLogger(__name__)


class Matcher:
    """The live subscription index; rebuilt from storage whenever subscriptions change."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._index = QueryIndex()

    async def refresh(self) -> None:
        """Rebuild from every active subscription (at start)."""
        subscriptions = await self._storage.active_subscriptions()
        index = QueryIndex(expander=self._index.expander)
        for subscription in subscriptions:
            self._add(index, subscription)
        self._index = index

    @staticmethod
    def _add(index: QueryIndex, subscription: Subscription) -> None:
        try:
            index.add(subscription)
        except ValueError as exc:  # a query saved under older rules that no longer parses
            log.warning("subscription %d skipped: %s", subscription.id, exc)

    def add(self, subscription: Subscription) -> None:
        """Start matching a subscription at once (a new one, or a returning chat's; an id
        already filed is replaced)."""
        self._add(self._index, subscription)

    def remove(self, subscription_id: int) -> None:
        self._index.remove(subscription_id)

    def match(self, text: str) -> list[Hit]:
        return self._index.match(text)

    def __len__(self) -> int:
        return len(self._index)


class Ingest:
    """Stores posts and queues alerts; wakes the outbox worker when there is something to send."""

    def __init__(self, storage: Storage, matcher: Matcher, outbox_ready: asyncio.Event) -> None:
        self._storage = storage
        self._matcher = matcher
        self._outbox_ready = outbox_ready

    async def handle(
        self, post: Post, *, source_id: int | None = None, cursor: str | None = None
    ) -> SaveResult:
        post = replace(post, text=clean_text(post.text))
        existing = await self._storage.get_post(post.source, post.channel, post.post_id)
        hits: list[Hit] = []
        if existing is None or existing.post.text != post.text:
            hits = self._matcher.match(post.text)
        records = [
            MatchRecord(
                hit.subscription.id, hit.subscription.chat_id, hit.subscription.query, hit.spans
            )
            for hit in hits
        ]
        result = await self._storage.save_post(post, records, source_id=source_id, cursor=cursor)
        if result.alerts_queued:
            log.info(
                "post %s/%s/%s: %d alert(s) queued",
                post.source,
                post.channel,
                post.post_id,
                result.alerts_queued,
            )
            self._outbox_ready.set()
        return result


class SourceFeed:
    """A Feed bound to one stored source: posts go to ingest with the source's cursor."""

    def __init__(self, ingest: Ingest, storage: Storage, source_id: int) -> None:
        self._ingest = ingest
        self._storage = storage
        self._source_id = source_id

    async def cursor(self) -> str | None:
        return await self._storage.get_cursor(self._source_id)

    async def deliver(self, post: Post, cursor: str) -> None:
        await self._ingest.handle(post, source_id=self._source_id, cursor=cursor)

    async def advance(self, cursor: str) -> None:
        await self._storage.set_cursor(self._source_id, cursor)

    async def delete(self, source: str, channel: str, post_id: str) -> None:
        if not await self._storage.mark_deleted(source, channel, post_id):
            log.info("deletion of %s/%s/%s: post was never stored", source, channel, post_id)

    async def succeeded(self) -> None:
        await self._storage.record_source_ok(self._source_id)

    async def failed(self, error: str) -> None:
        await self._storage.record_source_error(self._source_id, error)
