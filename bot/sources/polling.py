"""What a polled source is (tgweb, x, rss), and the one loop that polls them all.

A polled source reads its place once per `poll()` and hands new posts to its feed. The
`Poller` decides when: every source on its own rhythm with jitter, so requests spread out;
a few requests per host at a time; exponential back-off per source on errors; the wait a
server asked for on a rate limit. Every outcome is recorded as the source's health.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import aiohttp

from bot.domain import SourceSpec
from bot.sources.base import Feed


class RetryLater(Exception):
    """The server asked us to wait (a rate limit): poll again after `delay` seconds.

    Not a fault of the source, so it does not grow the back-off; it is still recorded.
    """

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = max(0.0, delay)


@runtime_checkable
class PolledSource(Protocol):
    """A source read by polling: the `Poller` calls `poll` on the source's rhythm."""

    spec: SourceSpec
    interval: float  # seconds between polls while healthy

    @property
    def host(self) -> str:
        """The host it requests (per-host concurrency is counted by this)."""
        ...

    async def poll(self, session: aiohttp.ClientSession, feed: Feed) -> int:
        """Read once, deliver what is new in order; returns how many new posts.

        Raises SourceStopped for problems a retry will not fix soon (401, a deleted account),
        RetryLater for a server-imposed wait, and any other exception for a failure worth
        retrying with back-off.
        """
        ...


def jittered(interval: float, jitter: float = 0.2) -> float:
    """`interval` spread by ±`jitter`, so sources with one rhythm do not poll in lockstep."""
    factor: float = random.uniform(1 - jitter, 1 + jitter)
    return interval * factor


async def poll_forever(
    source: PolledSource,
    feed: Feed,
    *,
    once: bool = False,
    session_factory: Callable[[], aiohttp.ClientSession] = aiohttp.ClientSession,
) -> None:
    """Poll one source on its own (a standalone `run()`; the service uses the Poller)."""
    async with session_factory() as session:
        while True:
            await source.poll(session, feed)
            if once:
                return
            await asyncio.sleep(jittered(source.interval))
