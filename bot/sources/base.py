"""The contract between a source and the ingest stage."""

from __future__ import annotations

from typing import Protocol

from bot.domain import Post, SourceSpec


class SourceStopped(Exception):
    """A problem retrying soon will not fix (revoked session, no public preview, a private
    channel): the source waits long before trying again and admins are told."""


class RetryLater(Exception):
    """The server asked us to wait (a rate limit): try again after `delay` seconds.

    Not a fault of the source, so it does not grow the back-off; it is still recorded.
    """

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = max(0.0, delay)


class Feed(Protocol):
    """Where a source sends what it reads; bound to one source and its durable cursor."""

    async def cursor(self) -> str | None:
        """The cursor saved with the last post this source delivered (None at first run)."""
        ...

    async def deliver(self, post: Post, cursor: str) -> None:
        """Store, match and queue alerts for a post, saving `cursor` in the same transaction."""
        ...

    async def advance(self, cursor: str) -> None:
        """Move the cursor past input that held no usable post (a malformed line, say)."""
        ...

    async def delete(self, source: str, channel: str, post_id: str) -> None:
        """The channel deleted a post (keyed as in `Post`): it stays stored, marked deleted."""
        ...

    async def succeeded(self) -> None:
        """A read completed without error (whether or not anything was new): the source is
        healthy. Not for a step inside a read that may still fail."""
        ...


class Source(Protocol):
    """Reads posts from one place and hands them to a feed, resuming from its cursor."""

    spec: SourceSpec

    async def run(self, feed: Feed) -> None:
        """Read until cancelled (or, for finite sources, until the input ends)."""
        ...
