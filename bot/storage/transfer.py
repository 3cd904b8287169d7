"""`dozor migrate`: copy a SQLite deployment into PostgreSQL, resumably, verified by counts.

The SQLite file is opened as the service opens it (its migrations applied, its staged matches
merged) and its process lock is held throughout, so no service writes to it meanwhile. Each
table is copied in the order of its key, a batch per transaction (COPY), converting SQLite's
storage types to PostgreSQL's own (ISO text and microseconds to timestamptz, 0/1 to boolean,
'' to NULL where SQLite uses it for "none", JSON text to jsonb). Interrupted, a second run
starts each table after the last key the destination holds: nothing is copied twice and
nothing skipped. At the end the identity sequences are moved past the copied ids and every
table's rows are counted on both sides.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from bot.storage.postgres import PostgresStorage
from bot.storage.sqlite import SqliteStorage

BATCH = 5_000  # rows per transaction on the destination
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _micros(value: Any) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


def _flag(value: Any) -> bool:
    return bool(value)


def _day(value: Any) -> date:
    return date.fromisoformat(value)


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Table:
    """One table to copy: its key (the copy's order and resume point) and its columns, each
    with the conversion from SQLite's value."""

    name: str
    key: tuple[str, ...]
    columns: tuple[tuple[str, Callable[[Any], Any]], ...]
    identity: bool = False  # `id` is a generated identity whose sequence must move on
    # PostgreSQL holds a post's rows as one (`fresh_alerts`, its migration 0006: `chats`
    # and `alerts` in chat order): rows are merged into their post's, not copied one for one.
    by_post: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


def _columns(spec: str, **converters: Callable[[Any], Any]) -> tuple[tuple[str, Any], ...]:
    return tuple((name, converters.get(name, _same)) for name in spec.split())


T, B = _time, _flag
TABLES = (
    Table(
        "sources",
        ("id",),
        _columns(
            "id spec kind cursor added_at last_ok_at last_error last_error_at failures enabled"
            " origin title stopped_at failing_since",
            added_at=T,
            last_ok_at=T,
            last_error_at=T,
            enabled=B,
            stopped_at=T,
            failing_since=T,
        ),
        identity=True,
    ),
    Table(
        "posts",
        ("id",),
        _columns(
            "id source channel post_id date text url edited deleted deleted_at stored_at"
            " updated_at forwarded_from views media_count source_id channel_title",
            date=T,
            edited=B,
            deleted=B,
            deleted_at=T,
            stored_at=T,
            updated_at=T,
        ),
        identity=True,
    ),
    Table(
        "subscribers",
        ("chat_id",),
        _columns(
            "chat_id name active created_at last_digest_at blocked_at language tg_language kind"
            " timezone digest_time digest_enabled muted_until quiet_start quiet_end"
            " link_previews introduced_at next_digest_at digest_quiet_days digest_chart",
            active=B,
            created_at=T,
            last_digest_at=T,
            blocked_at=T,
            digest_enabled=B,
            muted_until=T,
            link_previews=B,
            introduced_at=T,
            next_digest_at=T,
            digest_quiet_days=B,
            digest_chart=B,
        ),
    ),
    Table(
        "subscriptions",
        ("id",),
        _columns("id chat_id query created_at mode paused preset", created_at=T, paused=B),
        identity=True,
    ),
    Table(
        "matches",
        ("post_id", "subscription_id"),
        _columns("post_id subscription_id chat_id query created_at", created_at=_micros),
    ),
    Table(
        "fresh_alerts",
        ("post_id", "chat_id"),
        _columns("post_id chat_id queries spans", queries=json.loads, spans=json.loads),
        by_post=True,
    ),
    Table(
        "outbox",
        ("id",),
        _columns(
            "id kind chat_id post_id queries spans text media created_at next_attempt_at"
            " attempts last_error sent_at failed_at",
            created_at=T,
            next_attempt_at=T,
            sent_at=T,
            failed_at=T,
        ),
        identity=True,
    ),
    Table("sent_daily", ("day",), _columns("day alerts digests", day=_day)),
)


@dataclass(frozen=True, slots=True)
class Count:
    table: str
    source: int
    destination: int

    @property
    def equal(self) -> bool:
        return self.source == self.destination


Progress = Callable[[str, int, int], None]  # table, rows done, rows in all


async def migrate(source: Path, destination: str, progress: Progress) -> list[Count]:
    """Copy the SQLite database `source` into the PostgreSQL database `destination` (its
    schema created or brought up to date first); the row counts of both, table by table.
    Raises StorageError when either cannot be used (a service running on `source`, say)."""
    held = await SqliteStorage.open(source, exclusive=True)  # the lock: no writer meanwhile
    try:
        await held.merge_matches()  # staged matches are matches: PostgreSQL has one table
        target = await PostgresStorage.open(destination)
        await target.close()
        return await asyncio.to_thread(_copy_all, source, destination, progress)
    finally:
        await held.close()


def _copy_all(source: Path, destination: str, progress: Progress) -> list[Count]:
    reader = sqlite3.connect(f"file:{Path(source).resolve()}?mode=ro", uri=True)
    try:
        with psycopg.connect(destination, autocommit=True) as writer:
            for table in TABLES:
                _copy(reader, writer, table, progress)
            _move_sequences(writer)
            return [_count(reader, writer, table) for table in TABLES]
    finally:
        reader.close()


def _copy(
    reader: sqlite3.Connection, writer: psycopg.Connection[Any], table: Table, progress: Progress
) -> None:
    total = _source_rows(reader, table.name)
    # Copied in key order, so what the destination holds is everything up to its last key.
    done = _destination_rows(writer, table)
    progress(table.name, done, total)
    for batch in _batches(reader, table, _last_key(writer, table)):
        with writer.transaction(), writer.cursor() as cursor:
            _write(cursor, table, batch)
        done += len(batch)
        progress(table.name, done, total)


def _write(cursor: psycopg.Cursor[Any], table: Table, batch: list[Sequence[Any]]) -> None:
    """One batch of SQLite rows, in key order, into the destination."""
    converters = [convert for _, convert in table.columns]
    rows = [
        [convert(value) for convert, value in zip(converters, row, strict=True)] for row in batch
    ]
    if table.by_post:
        # A post's rows may span two batches: the later ones join its row, in chat order.
        cursor.executemany(
            "INSERT INTO fresh_alerts AS fresh (post_id, chats, alerts)"
            " VALUES (%s, %s, %s) ON CONFLICT (post_id) DO UPDATE SET"
            " chats = fresh.chats || excluded.chats, alerts = fresh.alerts || excluded.alerts",
            [
                (
                    post_id,
                    [chat_id],
                    Jsonb([{"chat_id": chat_id, "queries": queries, "spans": spans}]),
                )
                for post_id, chat_id, queries, spans in rows
            ],
        )
        return
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, table.names))
    )
    with cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _batches(
    reader: sqlite3.Connection, table: Table, after: tuple[Any, ...] | None
) -> Iterator[list[Sequence[Any]]]:
    columns = ", ".join(table.names)
    order = ", ".join(table.key)
    positions = [table.names.index(name) for name in table.key]
    while True:
        where, params = _after(table.key, after)
        rows = reader.execute(
            f"SELECT {columns} FROM {table.name} {where} ORDER BY {order} LIMIT ?",
            (*params, BATCH),
        ).fetchall()
        if not rows:
            return
        yield rows
        after = tuple(rows[-1][position] for position in positions)


def _after(key: tuple[str, ...], after: tuple[Any, ...] | None) -> tuple[str, tuple[Any, ...]]:
    if after is None:
        return "", ()
    marks = ", ".join("?" * len(key))
    return f"WHERE ({', '.join(key)}) > ({marks})", after


def _source_rows(reader: sqlite3.Connection, name: str) -> int:
    return int(reader.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0])


def _destination_rows(writer: psycopg.Connection[Any], table: Table) -> int:
    """The destination's rows, counted as SQLite's (a post's alerts, one for each chat)."""
    count = sql.SQL("COALESCE(SUM(cardinality(chats)), 0)" if table.by_post else "COUNT(*)")
    row = writer.execute(
        sql.SQL("SELECT {} FROM {}").format(count, sql.Identifier(table.name))
    ).fetchone()
    return int(row[0]) if row is not None else 0


def _last_key(writer: psycopg.Connection[Any], table: Table) -> tuple[Any, ...] | None:
    """The greatest key the destination holds, as SQLite stores it (None: empty)."""
    if table.by_post:  # (post_id, chat_id): the last post's last chat
        query = sql.SQL(
            "SELECT post_id, chats[cardinality(chats)] FROM {} ORDER BY post_id DESC LIMIT 1"
        ).format(sql.Identifier(table.name))
    else:
        query = sql.SQL("SELECT {} FROM {} ORDER BY {} LIMIT 1").format(
            sql.SQL(", ").join(map(sql.Identifier, table.key)),
            sql.Identifier(table.name),
            sql.SQL(", ").join(sql.SQL("{} DESC").format(sql.Identifier(k)) for k in table.key),
        )
    row = writer.execute(query).fetchone()
    if row is None:
        return None
    return tuple(_as_stored(value) for value in row)


def _as_stored(value: Any) -> Any:
    # Keys are ids and chat ids, except sent_daily's day (a date, stored as ISO text).
    return value.isoformat() if isinstance(value, date) else value


def _move_sequences(writer: psycopg.Connection[Any]) -> None:
    for table in TABLES:
        if table.identity:
            writer.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({name}, 'id'),"
                    " (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
                ).format(name=sql.Literal(table.name), table=sql.Identifier(table.name))
            )


def _count(reader: sqlite3.Connection, writer: psycopg.Connection[Any], table: Table) -> Count:
    return Count(table.name, _source_rows(reader, table.name), _destination_rows(writer, table))
