"""The contract suite: every behaviour the service relies on, run against both engines.

`store` is an open, empty `Storage`: a SQLite file, or a PostgreSQL database. The PostgreSQL
server is `DOZOR_TEST_POSTGRES` (a URL; default postgresql://127.0.0.1:5432/test, trust auth, as on
every development and CI machine here); each test process creates a database of its own
there, migrates it once and drops it at the end, and each test starts from empty tables.
Without a server the PostgreSQL half is skipped, and the run says so at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from bot.storage import SqliteStorage, Storage
from bot.storage.postgres import PostgresStorage

SERVER = os.environ.get("DOZOR_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
ENGINES = ("sqlite", "postgres")
BOUND = 30.0  # seconds: generous; never a fixed wait


def _with_database(url: str, name: str) -> str:
    """`url` (postgresql://…) naming the database `name` instead."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new database on the test server for the block (its URL), dropped afterwards; skips
    the test where there is no server."""
    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at {SERVER} ({exc}): the PostgreSQL half skipped")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield _with_database(SERVER, name)
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the test server for this test process, dropped afterwards."""
    with fresh_database("dozor_contract") as url:
        yield url


async def _empty_tables(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'schema_migrations'"
        )
        tables = [row[0] for row in await cursor.fetchall()]
        if tables:
            await conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(table) for table in tables)
                )
            )


@pytest.fixture(params=ENGINES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """An open, empty Storage on each engine in turn."""
    opened: Storage
    if request.param == "sqlite":
        opened = await SqliteStorage.open(tmp_path / "dozor.sqlite3")
    else:
        url: str = request.getfixturevalue("postgres_url")
        opened = await PostgresStorage.open(url)
        await _empty_tables(url)
    try:
        yield opened
    finally:
        await opened.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if "the PostgreSQL half skipped" in str(report.longrepr)
    ]
    if skipped:
        terminalreporter.write_line(
            f"NOTE: {len(skipped)} PostgreSQL contract tests skipped: no server at {SERVER}"
            " (set DOZOR_TEST_POSTGRES to a server's URL to run them)",
            yellow=True,
            bold=True,
        )


async def _eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait for `check` to hold (the server ends a closed session a moment later)."""
    async with asyncio.timeout(BOUND):
        while not await check():  # noqa: ASYNC110 (the server, not this process, changes it)
            await asyncio.sleep(0.05)
