"""A test feed: the real SourceFeed on the real store, recording what a source delivered."""

from __future__ import annotations

import asyncio

from bot.domain import Post
from bot.ingest import Ingest, Matcher, SourceFeed
from bot.storage import Storage


class RecordingFeed(SourceFeed):
    """Records delivered post ids; can fail on one post id, as a crash while storing would."""

    def __init__(
        self,
        storage: Storage,
        source_id: int,
        matcher: Matcher | None = None,
        fail_on: str | None = None,
    ) -> None:
        ingest = Ingest(storage, matcher or Matcher(storage), asyncio.Event())
        super().__init__(ingest, storage, source_id)
        self.delivered: list[str] = []
        self.fail_on = fail_on

    async def deliver(self, post: Post, cursor: str) -> None:
        if post.post_id == self.fail_on:
            raise RuntimeError("simulated crash while storing")
        await super().deliver(post, cursor)
        self.delivered.append(post.post_id)
