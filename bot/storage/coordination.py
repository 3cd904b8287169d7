"""Who does what when several workers share one database, and the news between them.

`PostgresCoordination` (bot/storage/postgres/coordination.py) holds roles and source claims
as advisory locks and passes news over LISTEN/NOTIFY; on SQLite there is one process, which
holds every role and reads every source (`LocalCoordination`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from typing import Protocol

SUBSCRIPTIONS = "dozor_subscriptions"  # channel: a chat's subscriptions changed (its id)
OUTBOX = "dozor_outbox"  # channel: alerts or digests were queued
LEADER = "leader"  # the role: chat commands, the sender, the digest and pruning jobs


class Coordination(Protocol):
    claimed: set[int]
    # Seconds a new leader waits before it sends: the one before may have sent up to the
    # moment it died, and Telegram's windows (30 a second, 1 a second per chat) span them.
    handover: float
    # This worker's identity in claims on outbox rows (PostgreSQL: its session); None when
    # one process is alone.
    worker: int | None

    async def try_role(self, role: str) -> bool:
        """Hold `role` if no live worker does; True while this worker holds it."""

    async def claim(self, source_id: int) -> bool:
        """Read the source from now on, if no live worker does."""

    async def release(self, source_id: int) -> None: ...

    async def workers(self, *, telegram: bool) -> int:
        """Live workers; with `telegram`, those with a Telegram session."""

    async def share(self, total: int, *, telegram: bool) -> int:
        """How many of `total` sources this worker should read."""

    async def alive(self) -> bool:
        """Whether what this worker holds is still held."""

    def listening(
        self, channels: Collection[str]
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[tuple[str, str]]]:
        """(channel, payload) notices from every worker, heard from the block's start."""

    async def close(self) -> None: ...


class LocalCoordination:
    """One process on a SQLite file: it is the leader and reads every source."""

    def __init__(self) -> None:
        self.claimed: set[int] = set()
        self.handover = 0.0  # nobody sent before this process
        self.worker: int | None = None

    async def try_role(self, role: str) -> bool:
        return True

    async def claim(self, source_id: int) -> bool:
        self.claimed.add(source_id)
        return True

    async def release(self, source_id: int) -> None:
        self.claimed.discard(source_id)

    async def workers(self, *, telegram: bool) -> int:
        # No other worker: none to leave telegram: sources to (without a session this
        # process reads them through t.me/s).
        return 0 if telegram else 1

    async def share(self, total: int, *, telegram: bool) -> int:
        return total

    async def alive(self) -> bool:
        return True

    @contextlib.asynccontextmanager
    async def listening(
        self, channels: Collection[str]
    ) -> AsyncIterator[AsyncIterator[tuple[str, str]]]:
        yield _silence()  # one process hears itself: nothing ever comes

    async def close(self) -> None:
        return None


async def _silence() -> AsyncIterator[tuple[str, str]]:
    await asyncio.Event().wait()
    yield "", ""
