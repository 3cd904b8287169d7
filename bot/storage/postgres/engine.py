"""The PostgreSQL engine's foundation: the connection pool, migrations, transactions, and
rows turned into domain objects. The parts of `PostgresStorage` (sources and posts,
subscribers, the outbox, digests) are mixins over this base, one module each.

psycopg 3: one driver for the service (async, a pool, LISTEN/NOTIFY) and the CLI's copy
from SQLite (sync, COPY), binary wheels. Several workers may share one database, so nothing
here assumes it is alone: migrations run under an advisory lock, and every write is a
transaction of its own.

Lock order, which every part keeps so that two workers never wait for each other in a
circle (PostgreSQL would cancel one): the `matches` table lock (`save_post` ROW EXCLUSIVE,
`write_barrier` SHARE, `move_chat` SHARE ROW EXCLUSIVE), then outbox and `fresh_alerts`
rows, then the chats' queue-summary locks (taken by the outbox triggers at the end of each
outbox statement, migration 0002), then subscriber rows. A transaction changes a chat's
waiting outbox rows in its last outbox statement.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Self

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bot.domain import Post, StoredPost, Subscriber, Subscription
from bot.redact import Redactor
from bot.storage.lock import DatabaseInUse, StorageError
from bot.storage.records import migration_scripts

log = logging.getLogger(__name__)

Row = Mapping[str, Any]
Connection = psycopg.AsyncConnection[DictRow]
MIGRATION_LOCK = 0x646F7A6F72  # "dozor": the advisory lock key held while migrating
SERVICE_LOCK = MIGRATION_LOCK + 1  # held by the one service on the database
POOL_SIZE = 8  # connections per process: ingest, the sender, handlers, jobs at once
CONNECT_TIMEOUT = 10  # seconds to reach the server at open


def now_utc() -> datetime:
    """The engine's clock for times Python stamps (most come from the server's)."""
    return datetime.now(UTC)


async def _configure(conn: Connection) -> None:
    # Times come back in UTC, as from SQLite, whatever the server's or the role's zone.
    await conn.execute("SET TimeZone TO 'UTC'")


class PostgresBase:
    """The pool and the helpers every part of the engine uses."""

    def __init__(
        self, pool: AsyncConnectionPool[Connection], *, redact: Callable[[str], str] | None
    ) -> None:
        self._pool = pool
        self._redact = redact or Redactor()
        # The connection holding the service lock (a session advisory lock), if exclusive:
        # the server releases it when the connection ends, even if the process is killed.
        self._service_lock: psycopg.AsyncConnection[Any] | None = None
        self._claimer: int | None = None  # whose claims the sender's messages carry

    @classmethod
    async def open(
        cls, url: str, *, exclusive: bool = False, redact: Callable[[str], str] | None = None
    ) -> Self:
        """Connect to `url` (postgresql://…), apply pending migrations and check that the
        database can be written. Raises StorageError with one line for the operator.

        `exclusive` (the service, `digest --now`) holds the database's service lock until
        `close()`, as the SQLite engine holds its file's: until several workers can share
        the sources and the outbox, a second service would send every alert twice."""
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            # No server-side prepared statements: a prepared statement is planned once for
            # any parameters, and an array given to unnest() is then guessed at 10 rows
            # whatever its length. A post's 560 matches then went through a nested loop
            # over its spans, 3-12 s a post instead of ~40 ms (benchmarks/workers.py).
            kwargs={"row_factory": dict_row, "autocommit": True, "prepare_threshold": None},
            configure=_configure,
            open=False,
            timeout=CONNECT_TIMEOUT,
            name="dozor",
        )
        probe: psycopg.AsyncConnection[Any] | None = None
        try:
            # One plain connection first: a refused or misconfigured server fails now with
            # the server's own reason, not after the pool's retries time out.
            probe = await psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
            )
            if exclusive:
                await _hold_service_lock(probe, url)
            else:
                await probe.close()
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT)
            storage = cls(pool, redact=redact)
            storage._service_lock = probe if exclusive else None
            await storage._migrate()
            await storage.check_writable()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await pool.close()
            if probe is not None:
                with contextlib.suppress(Exception):
                    await probe.close()
            if isinstance(exc, psycopg.Error | PoolTimeout | TimeoutError):
                raise StorageError(unusable_server(url, exc)) from exc
            raise
        return storage

    async def close(self) -> None:
        try:
            await self._pool.close()
        finally:
            if self._service_lock is not None:
                await self._service_lock.close()
                self._service_lock = None

    async def check_writable(self) -> None:
        """Raise if the database cannot be written now; writes nothing (rolled back)."""
        async with self._pool.connection() as conn, conn.transaction(force_rollback=True):
            await conn.execute("CREATE TEMPORARY TABLE dozor_writable (x integer)")

    async def _migrate(self) -> None:
        scripts = migration_scripts("bot.storage.postgres")
        async with self._pool.connection() as conn, conn.transaction():
            # Workers starting together: one migrates, the others wait and find it done.
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                " applied_at timestamptz NOT NULL)"
            )
            cursor = await conn.execute("SELECT version FROM schema_migrations")
            applied = {int(row["version"]) for row in await cursor.fetchall()}
            for version, script in scripts:
                if version in applied:
                    continue
                log.info("applying PostgreSQL migration %s", script.name)
                await conn.execute(script.read_text(encoding="utf-8").encode())
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES (%s, %s)", (version, now_utc())
                )

    async def schema_version(self) -> int:
        row = await self._one("SELECT MAX(version) AS version FROM schema_migrations")
        return int(row["version"]) if row is not None and row["version"] is not None else 0

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        """One connection, one transaction: committed when the block ends, rolled back if it
        raises."""
        async with self._pool.connection() as conn, conn.transaction():
            yield conn

    async def _one(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Row | None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchone()

    async def _all(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[Row]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            return list(await cursor.fetchall())

    async def _run(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> int:
        """One statement in a transaction of its own; the rows it changed."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            return max(cursor.rowcount, 0)


async def _hold_service_lock(conn: psycopg.AsyncConnection[Any], url: str) -> None:
    cursor = await conn.execute(
        "SELECT pg_try_advisory_lock(%s), (SELECT pid FROM pg_locks WHERE locktype ="
        " 'advisory' AND classid::bigint = %s AND objid::bigint = %s AND granted LIMIT 1)",
        (SERVICE_LOCK, SERVICE_LOCK >> 32, SERVICE_LOCK & 0xFFFFFFFF),
    )
    row = await cursor.fetchone()
    if row is not None and row[0]:
        return
    holder = f"server process {row[1]}" if row is not None and row[1] else "another process"
    raise DatabaseInUse(
        f"the PostgreSQL database {where(url)} is already used by a running Dozor service"
        f" ({holder}); stop it first — two services on one database would send every alert"
        " twice",
        None,
    )


def where(url: str) -> str:
    """`user@host:port/database` of a DATABASE_URL: never its password."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "(a malformed DATABASE_URL)"
    user = f"{params['user']}@" if params.get("user") else ""
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{user}{host}:{params.get('port') or 5432}/{params.get('dbname') or ''}"


def unusable_server(url: str, exc: BaseException) -> str:
    """One line for the operator: why the PostgreSQL server cannot be used, without the
    password that `url` may hold."""
    return (
        f"cannot use the PostgreSQL database {where(url)} ({type(exc).__name__}: {exc}); check"
        " DATABASE_URL, that the server runs and that the user may create tables there"
    )


def stored_post(row: Row, prefix: str = "") -> StoredPost:
    """A post row (its columns, each name after `prefix`) as a StoredPost."""
    post = Post(
        source=row[f"{prefix}source"],
        channel=row[f"{prefix}channel"],
        post_id=row[f"{prefix}post_id"],
        date=row[f"{prefix}date"],
        text=row[f"{prefix}text"],
        url=row[f"{prefix}url"],
        edited=bool(row[f"{prefix}edited"]),
        forwarded_from=row[f"{prefix}forwarded_from"],
        views=row[f"{prefix}views"],
        media_count=int(row[f"{prefix}media_count"]),
        channel_title=row.get(f"{prefix}channel_title"),
    )
    return StoredPost(int(row[f"{prefix}id"]), post, deleted=bool(row[f"{prefix}deleted"]))


def subscriber(row: Row) -> Subscriber:
    return Subscriber(
        chat_id=int(row["chat_id"]),
        name=row["name"],
        active=bool(row["active"]),
        created_at=row["created_at"],
        last_digest_at=row["last_digest_at"],
        language=row["language"],
        tg_language=row["tg_language"],
        kind=row["kind"],
        timezone=row["timezone"],
        digest_time=row["digest_time"],
        digest_enabled=bool(row["digest_enabled"]),
        muted_until=row["muted_until"],
        quiet_start=row["quiet_start"],
        quiet_end=row["quiet_end"],
        link_previews=bool(row["link_previews"]),
        introduced_at=row["introduced_at"],
        next_digest_at=row["next_digest_at"],
        digest_quiet_days=bool(row["digest_quiet_days"]),
        digest_chart=bool(row["digest_chart"]),
    )


def subscription(row: Row) -> Subscription:
    return Subscription(
        int(row["id"]),
        int(row["chat_id"]),
        row["query"],
        row["created_at"],
        mode=row["mode"],
        paused=bool(row["paused"]),
        preset=row["preset"],
    )
