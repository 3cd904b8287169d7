"""Several `dozor run` on one PostgreSQL database: who does what, and news between them.

Everything is held as session advisory locks on one connection of each worker's own, so
whatever kills a worker (kill -9, a lost machine once TCP gives up) ends its session and the
server frees what it held; another worker takes it over on its next look, from the durable
state in the database (cursors, the outbox):

- the leader role: one worker answers chat commands (getUpdates), drains the outbox at the
  bot's one pace, and runs the digest and pruning jobs;
- each source: read by exactly one worker at a time, each worker taking at most its fair
  share of the unclaimed ones (`telegram:` sources only workers with a Telegram session).

News goes over LISTEN/NOTIFY on a second connection: subscription changes (every worker's
index follows within a second) and alerts queued (the leader's sender wakes at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator, Collection
from typing import Any, Self

import psycopg
from psycopg import sql

from bot.storage.postgres.engine import CONNECT_TIMEOUT

log = logging.getLogger(__name__)

ROLE_SPACE = 0x64726F6C  # 'drol': the two-key advisory space of roles
SOURCE_SPACE = 0x64737263  # 'dsrc': of sources (the key is the source's id)
ROLES = {"leader": 1}
# Seconds a new leader waits before sending: the one before may have sent up to its last
# moment, or, if the server ended its session, until it noticed (it checks every second:
# bot/app.py SESSION_CHECK). The longest spacing the pacer keeps is a group's, 3.1 s (20 a
# minute: bot/delivery/sender.py GROUP_INTERVAL), so waiting that plus the second keeps every
# limit across the change, a group's included.
HANDOVER = 4.2
# Both ends watch the connections: a worker whose machine vanished frees what it held within
# ~20 s (the server's side), and a worker notices a dead link as soon (the client's side).
KEEPALIVE: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "options": "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3",
}
WORKER = "dozor-worker"  # application_name of a worker's lock connection
TELEGRAM_WORKER = "dozor-worker-tg"  # ... of a worker that can read telegram: sources


class PostgresCoordination:
    """A worker's roles, source claims and notifications on one PostgreSQL database."""

    def __init__(self, locks: psycopg.AsyncConnection[Any], url: str) -> None:
        self._locks = locks
        self._url = url
        self._guard = asyncio.Lock()  # one statement at a time on the lock connection
        self.claimed: set[int] = set()
        self.roles: set[str] = set()
        self.handover = HANDOVER
        # The lock connection's server process: claims on outbox rows name it, and hold
        # while it lives (migration 0007).
        self.worker: int | None = locks.info.backend_pid

    @classmethod
    async def open(cls, url: str, *, telegram: bool) -> Self:
        locks = await psycopg.AsyncConnection.connect(
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            application_name=TELEGRAM_WORKER if telegram else WORKER,
            **KEEPALIVE,
        )
        return cls(locks, url)

    async def _value(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        async with self._guard:
            cursor = await self._locks.execute(sql, params)
            row = await cursor.fetchone()
        return None if row is None else row[0]

    async def try_role(self, role: str) -> bool:
        """Hold `role` if no live worker does; True while this worker holds it."""
        if role in self.roles:
            return True
        if await self._value("SELECT pg_try_advisory_lock(%s, %s)", (ROLE_SPACE, ROLES[role])):
            self.roles.add(role)
            log.info("this worker is now the %s", role)
            return True
        return False

    async def claim(self, source_id: int) -> bool:
        """Read the source from now on, if no live worker does."""
        if source_id in self.claimed:
            return True
        if await self._value("SELECT pg_try_advisory_lock(%s, %s)", (SOURCE_SPACE, source_id)):
            self.claimed.add(source_id)
            return True
        return False

    async def release(self, source_id: int) -> None:
        if source_id not in self.claimed:
            return
        self.claimed.discard(source_id)
        # A lost session released it already (this runs at shutdown after one, too).
        with contextlib.suppress(psycopg.Error):
            await self._value("SELECT pg_advisory_unlock(%s, %s)", (SOURCE_SPACE, source_id))

    async def workers(self, *, telegram: bool) -> int:
        """Live workers (their lock connections); with `telegram`, those with a session."""
        names = [TELEGRAM_WORKER] if telegram else [WORKER, TELEGRAM_WORKER]
        live = await self._value(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = ANY(%s)"
            " AND datname = current_database()",
            (names,),
        )
        return int(live or 0)

    async def share(self, total: int, *, telegram: bool) -> int:
        """How many of `total` sources this worker should read: an even split over the live
        workers that can read them."""
        return math.ceil(total / max(await self.workers(telegram=telegram), 1))

    async def alive(self) -> bool:
        """Whether the lock connection (and so everything held) is still there."""
        try:
            return bool(await self._value("SELECT true"))
        except psycopg.Error:
            return False

    async def notify(self, channel: str, payload: str = "") -> None:
        await self._value("SELECT pg_notify(%s, %s)", (channel, payload))

    @contextlib.asynccontextmanager
    async def listening(
        self, channels: Collection[str]
    ) -> AsyncIterator[AsyncIterator[tuple[str, str]]]:
        """(channel, payload) as they come, on a connection of their own; every notice sent
        after the block is entered is heard."""
        async with await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT, **KEEPALIVE
        ) as conn:
            for channel in channels:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            notes = _notes(conn)
            try:
                yield notes
            finally:
                await notes.aclose()  # it holds the connection while it waits: end it first

    async def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            await self._locks.close()
        self.claimed.clear()
        self.roles.clear()


async def _notes(conn: psycopg.AsyncConnection[Any]) -> AsyncGenerator[tuple[str, str], None]:
    async for note in conn.notifies():
        yield note.channel, note.payload
