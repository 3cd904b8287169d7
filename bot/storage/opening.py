"""Which engine a deployment uses: PostgreSQL when `DATABASE_URL` is set, else the SQLite
file `DOZOR_DB`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bot.storage.coordination import Coordination, LocalCoordination
from bot.storage.postgres import PostgresStorage
from bot.storage.postgres.coordination import PostgresCoordination
from bot.storage.protocol import Storage
from bot.storage.sqlite import SqliteStorage


async def open_storage(
    sqlite_path: Path,
    database_url: str | None,
    *,
    exclusive: bool = False,
    redact: Callable[[str], str] | None = None,
) -> Storage:
    """Open the configured database (migrated, checked writable). `exclusive`: this process
    is the service, and no other service may use the database while it runs."""
    if database_url:
        return await PostgresStorage.open(database_url, exclusive=exclusive, redact=redact)
    return await SqliteStorage.open(sqlite_path, exclusive=exclusive, redact=redact)


async def open_coordination(database_url: str | None, *, telegram: bool) -> Coordination:
    """How this process shares the work: alone on SQLite; with the other workers on
    PostgreSQL (`telegram`: it has a Telegram session, so it may read telegram: sources)."""
    if database_url:
        return await PostgresCoordination.open(database_url, telegram=telegram)
    return LocalCoordination()
