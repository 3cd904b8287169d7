"""`Storage` on SQLite via aiosqlite: typed async methods that return domain objects.

One connection in autocommit mode; every write runs in an explicit `BEGIN IMMEDIATE`
transaction under an asyncio lock, so concurrent coroutines (ingest, handlers, sender)
never interleave statements inside another's transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import sqlite3
from collections.abc import (
    AsyncIterator,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import aiosqlite

from bot.domain import (
    MODE_BOTH,
    MODE_DIGEST,
    MODES,
    DigestEntry,
    Post,
    SourceInfo,
    Span,
    StoredPost,
    Subscriber,
    Subscription,
)
from bot.redact import Redactor
from bot.storage.lock import ProcessLock, StorageError, unusable_database
from bot.storage.records import (
    FILE_BATCH,
    KEEP_PER_SOURCE,
    MEDIA_CHART,
    PRUNE_BATCH,
    RHYTHM_MIN_POSTS,
    RHYTHM_POSTS,
    MatchRecord,
    PendingMessage,
    Pruned,
    QueuedDigest,
    SaveResult,
    TooManySubscriptions,
    ZoneShift,
    migration_scripts,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")


def _ts(moment: datetime) -> str:
    """Times are stored as UTC ISO text with a fixed width, so text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _us(moment: datetime) -> int:
    """A match's time as stored: microseconds since the epoch (migration 0009)."""
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _now() -> datetime:
    return datetime.now(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHATS_PER_READ = 100  # chats per digest read (a few parameters each, well within SQLite's)
_ROWS_PER_TURN = 100  # rows turned into objects before the event loop gets a turn


class _RollBack(Exception):
    """Raised inside `_transaction` to end it with a ROLLBACK and no error."""


# Only the cursor: a cursor written in the middle of a read (an X account looked up, a
# channel resolved) says nothing about whether the read will succeed. Health is recorded
# from outcomes alone (`record_source_ok`, `record_source_error`).
_SET_CURSOR = "UPDATE sources SET cursor = ? WHERE id = ?"


async def _fetch_one(
    db: aiosqlite.Connection, sql: str, params: Sequence[object]
) -> sqlite3.Row | None:
    async with db.execute(sql, params) as cursor:
        row: sqlite3.Row | None = await cursor.fetchone()
        return row


async def _fetch_all(
    db: aiosqlite.Connection, sql: str, params: Sequence[object]
) -> list[sqlite3.Row]:
    async with db.execute(sql, params) as cursor:
        return list(await cursor.fetchall())


async def open_reader(path: Path | str, *, uri: bool = False) -> aiosqlite.Connection:
    """A connection to the database at `path` (a `file:` URI with `uri`) that cannot write."""
    reader = await aiosqlite.connect(str(path), uri=uri, isolation_level=None)
    try:
        reader.row_factory = sqlite3.Row
        await reader.execute("PRAGMA query_only = 1")
        await reader.execute("PRAGMA busy_timeout = 5000")
    except BaseException:
        with contextlib.suppress(Exception):
            await reader.close()
        raise
    return reader


class SqliteStorage:
    """Everything Dozor keeps, behind typed methods."""

    def __init__(
        self,
        connection: aiosqlite.Connection,
        *,
        redact: Callable[[str], str] | None = None,
        lock: ProcessLock | None = None,
    ) -> None:
        self._db = connection
        # Reads that never need to see a transaction in progress (the sender's next messages,
        # digests, search, export) go through a second connection: in WAL mode they run
        # beside a write instead of queueing behind it on the writer's thread.
        self._reader = connection
        self._lock = asyncio.Lock()
        self._redact = redact or Redactor()
        self._process_lock = lock
        # Matches staged since the last merge (a hint for when to merge: readers by chat
        # look at the table itself).
        self._staged = 0

    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        exclusive: bool = False,
        redact: Callable[[str], str] | None = None,
    ) -> SqliteStorage:
        """Open (creating if needed) the database and apply pending migrations.

        `exclusive` (the service, `digest --now`) holds the file's process lock until
        `close()`: a second service on the same file would send every alert twice. `redact`
        is applied to every error text stored. Raises StorageError, with one line saying what
        is wrong with which file and what to do, when the database cannot be used.
        """
        lock: ProcessLock | None = None
        connection: aiosqlite.Connection | None = None
        try:
            if str(path) != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                lock = ProcessLock.acquire(path) if exclusive else None
            connection = await aiosqlite.connect(str(path), isolation_level=None)
            connection.row_factory = sqlite3.Row
            storage = cls(connection, redact=redact, lock=lock)
            await connection.execute("PRAGMA journal_mode = WAL")
            await connection.execute("PRAGMA synchronous = NORMAL")
            # A popular post dirties a few hundred scattered index pages (its matches, by
            # chat): a 16 MiB cache keeps them, and a checkpoint every ~40 MiB of WAL (not
            # every 4 MiB) writes a page changed by many posts back once, not once per two
            # posts. The ingest benchmark's floor: 114 -> 171 posts/s at 10,000
            # subscriptions. The WAL is cut back to 64 MiB after a checkpoint.
            await connection.execute("PRAGMA cache_size = -16384")
            await connection.execute("PRAGMA wal_autocheckpoint = 10000")
            await connection.execute("PRAGMA journal_size_limit = 67108864")
            await connection.execute("PRAGMA foreign_keys = ON")
            await connection.execute("PRAGMA busy_timeout = 5000")
            await storage._migrate()
            await storage.check_writable()
            async with connection.execute("SELECT COUNT(*) FROM staged_matches") as cursor:
                staged = await cursor.fetchone()
            storage._staged = int(staged[0]) if staged is not None else 0
            if str(path) != ":memory:":
                storage._reader = await open_reader(path)
        except StorageError:
            raise
        except (sqlite3.Error, OSError) as exc:
            if connection is not None:
                # An open aiosqlite connection keeps a thread alive: close it, or the
                # process would hang at exit after reporting the error.
                with contextlib.suppress(Exception):
                    await connection.close()
            if lock is not None:
                lock.release()
            raise StorageError(unusable_database(path, exc)) from exc
        except BaseException:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()
            if lock is not None:
                lock.release()
            raise
        return storage

    async def close(self) -> None:
        try:
            if self._reader is not self._db:
                await self._reader.close()
            await self._db.close()
        finally:
            if self._process_lock is not None:
                self._process_lock.release()
                self._process_lock = None

    async def check_writable(self) -> None:
        """Raise if the database cannot be written now (read-only, disk full); writes nothing.

        Run at open, so a bad file fails at start rather than at the first alert."""
        async with self._transaction() as db:
            # Rewriting the header's user_version writes page 1 (rolled back below).
            async with db.execute("PRAGMA user_version") as cursor:
                row = await cursor.fetchone()
            version = int(row[0]) if row is not None else 0
            await db.execute(f"PRAGMA user_version = {version + 1}")
            raise _RollBack

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
            except BaseException:
                # Cancelled while waiting: the BEGIN may still run on the database thread,
                # which would leave a transaction open for everyone after us.
                await self._rollback()
                raise
            try:
                yield self._db
            except _RollBack:
                await self._rollback()
                return
            except BaseException:
                await self._rollback()
                raise
            try:
                await self._db.execute("COMMIT")
            except BaseException:
                # A failed COMMIT (disk full) may leave the transaction open; end it, or
                # every later BEGIN would fail with "cannot start a transaction within a
                # transaction".
                await self._rollback()
                raise

    async def _rollback(self) -> None:
        """End the transaction, whatever state it is in. The ROLLBACK is queued on the
        database thread behind any statement still pending there, so it is issued
        unconditionally (`in_transaction` may not reflect a statement not yet run); "no
        transaction is active" is then harmless."""
        with contextlib.suppress(sqlite3.Error):
            await self._db.execute("ROLLBACK")

    async def _migrate(self) -> None:
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
            " applied_at TEXT NOT NULL)"
        )
        async with self._db.execute("SELECT version FROM schema_migrations") as cursor:
            applied = {row[0] for row in await cursor.fetchall()}
        for version, script in migration_scripts("bot.storage"):
            if version in applied:
                continue
            log.info("applying migration %s", script.name)
            # executescript commits on its own; the version row goes in the same script.
            sql = script.read_text(encoding="utf-8")
            await self._db.executescript(
                f"BEGIN;\n{sql}\nINSERT INTO schema_migrations VALUES ({version}, "
                f"'{_ts(_now())}');\nCOMMIT;"
            )

    async def _one(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Row | None:
        return await _fetch_one(self._db, sql, params)

    async def _all(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        return await _fetch_all(self._db, sql, params)

    async def _read_one(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Row | None:
        """`_one` through the reading connection (never for a read inside a transaction)."""
        return await _fetch_one(self._reader, sql, params)

    async def _read_all(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """`_all` through the reading connection (never for a read inside a transaction)."""
        return await _fetch_all(self._reader, sql, params)

    # --- sources -------------------------------------------------------------------------

    async def ensure_source(
        self, spec: str, kind: str, origin: str = "config", *, added_at: datetime | None = None
    ) -> int:
        """The id of a source, adding it if new (an existing one keeps its state).

        `added_at` (default: now) is when watching it began: posts published more than a day
        before it are stored without alerts (see `SourceFeed`).
        """
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR IGNORE INTO sources (spec, kind, added_at, origin) VALUES (?, ?, ?, ?)",
                (spec, kind, _ts(added_at or _now()), origin),
            )
            row = await self._one("SELECT id FROM sources WHERE spec = ?", (spec,))
        assert row is not None
        return int(row["id"])

    async def add_source(self, spec: str, kind: str, origin: str) -> bool:
        """Watch a source (again); False when it was already watched."""
        async with self._transaction() as db:
            row = await self._one(
                "SELECT id, enabled FROM sources WHERE lower(spec) = lower(?)", (spec,)
            )
            if row is None:
                await db.execute(
                    "INSERT INTO sources (spec, kind, added_at, origin) VALUES (?, ?, ?, ?)",
                    (spec, kind, _ts(_now()), origin),
                )
                return True
            if row["enabled"]:
                return False
            # Watched anew from now: what it published while it was not watched and is
            # older than a day is stored without alerts, like a new source's back catalogue.
            await db.execute(
                "UPDATE sources SET enabled = 1, failures = 0, stopped_at = NULL,"
                " failing_since = NULL, added_at = ?, origin = ? WHERE id = ?",
                (_ts(_now()), origin, row["id"]),
            )
            return True

    async def remove_source(self, spec: str) -> bool:
        """Stop watching a source; its posts and cursor stay. False if it was not watched."""
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE sources SET enabled = 0 WHERE lower(spec) = lower(?) AND enabled = 1",
                (spec,),
            )
        return cur.rowcount > 0

    async def list_sources(self, *, enabled_only: bool = True) -> list[SourceInfo]:
        """Every watched source with its health and what it brought in the last 24 hours."""
        since = _ts(_now() - timedelta(hours=24))
        rows = await self._all(
            "SELECT sources.*,"
            " (SELECT COUNT(*) FROM posts WHERE posts.source_id = sources.id"
            "  AND posts.stored_at > ?) AS posts_24h,"
            " (SELECT MAX(stored_at) FROM posts WHERE posts.source_id = sources.id) AS last_post"
            " FROM sources WHERE enabled = 1 OR ? = 0 ORDER BY sources.id",
            (since, int(enabled_only)),
        )
        gaps = {int(row["id"]): await self._usual_gap(int(row["id"])) for row in rows}
        return [
            SourceInfo(
                id=int(row["id"]),
                spec=row["spec"],
                kind=row["kind"],
                enabled=bool(row["enabled"]),
                origin=row["origin"],
                added_at=_dt(row["added_at"]) or _now(),
                last_post_at=_dt(row["last_post"]),
                last_ok_at=_dt(row["last_ok_at"]),
                last_error=row["last_error"],
                last_error_at=_dt(row["last_error_at"]),
                failures=int(row["failures"]),
                posts_24h=int(row["posts_24h"]),
                usual_gap=gaps[int(row["id"])],
                title=row["title"],
                stopped_at=_dt(row["stopped_at"]),
                failing_since=_dt(row["failing_since"]),
            )
            for row in rows
        ]

    async def _usual_gap(self, source_id: int) -> timedelta | None:
        """The longest quiet spell between the source's last posts (None: too few to tell)."""
        rows = await self._all(
            "SELECT stored_at FROM posts WHERE source_id = ? ORDER BY stored_at DESC LIMIT ?",
            (source_id, RHYTHM_POSTS + 1),
        )
        times = [moment for row in rows if (moment := _dt(row["stored_at"])) is not None]
        if len(times) <= RHYTHM_MIN_POSTS:
            return None
        return max(newer - older for newer, older in itertools.pairwise(times))

    async def get_cursor(self, source_id: int) -> str | None:
        row = await self._one("SELECT cursor FROM sources WHERE id = ?", (source_id,))
        return None if row is None else row["cursor"]

    async def source_added_at(self, source_id: int) -> datetime | None:
        """When watching the source began (None for an unknown id)."""
        row = await self._one("SELECT added_at FROM sources WHERE id = ?", (source_id,))
        return None if row is None else _dt(row["added_at"])

    async def set_cursor(self, source_id: int, cursor: str) -> None:
        """Move the cursor; the source's health is untouched (a read may still fail)."""
        async with self._transaction() as db:
            await db.execute(_SET_CURSOR, (cursor, source_id))

    async def record_source_ok(self, source_id: int) -> None:
        """A read completed without error: the source is healthy (no longer failing or
        stopped); the cursor is unchanged."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE sources SET last_ok_at = ?, failures = 0, failing_since = NULL,"
                " stopped_at = NULL WHERE id = ?",
                (_ts(_now()), source_id),
            )

    async def record_source_error(
        self, source_id: int, error: str, *, stopped: bool = False
    ) -> None:
        """A read failed. `stopped`: with a problem a retry will not fix soon (SourceStopped);
        the source counts as stopped from the first such failure until a read succeeds."""
        now = _ts(_now())
        async with self._transaction() as db:
            await db.execute(
                "UPDATE sources SET last_error = ?, last_error_at = ?, failures = failures + 1,"
                " failing_since = COALESCE(failing_since, ?),"
                " stopped_at = CASE WHEN ? THEN COALESCE(stopped_at, ?) ELSE stopped_at END"
                " WHERE id = ?",
                (self._redact(error)[:500], now, now, int(stopped), now, source_id),
            )

    # --- posts and matches ---------------------------------------------------------------

    async def get_post(self, source: str, channel: str, post_id: str) -> StoredPost | None:
        row = await self._one(
            "SELECT * FROM posts WHERE source = ? AND channel = ? AND post_id = ?",
            (source, channel, post_id),
        )
        return None if row is None else _stored_post(row)

    async def save_post(
        self,
        post: Post,
        matches: Iterable[MatchRecord],
        *,
        source_id: int | None = None,
        cursor: str | None = None,
    ) -> SaveResult:
        """Store a post, its matches, its alerts and the source cursor in one transaction.

        Reading the same post again changes nothing. A changed text is stored as an edit; only
        subscribers who had no match on this post before get an alert for it.

        The whole transaction runs as one call on the database's thread: a statement at a
        time, each a hop between the event loop and that thread, cost more than the writing
        itself for a post with few matches (and the event loop has nothing to do meanwhile).
        """
        records = list(matches)
        return await self._transaction_on_thread(
            lambda db: self._save_post_in(db, post, records, source_id, cursor)
        )

    async def _transaction_on_thread(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """`_transaction`, run whole as one call on the database's thread (aiosqlite's queue
        of calls, so it is ordered with every other statement): BEGIN IMMEDIATE, `work` with
        the writing connection, COMMIT; on any failure (a failed COMMIT too, which may leave
        the transaction open) ROLLBACK. For writes of many statements on a hot path; a
        cancelled caller does not stop the call, which commits or rolls back on its own."""

        def whole(db: sqlite3.Connection) -> _T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            return result

        async with self._lock:
            connection: sqlite3.Connection = self._db._conn
            done: _T = await self._db._execute(whole, connection)  # type: ignore[no-untyped-call]
            return done

    def _save_post_in(
        self,
        db: sqlite3.Connection,
        post: Post,
        matches: list[MatchRecord],
        source_id: int | None,
        cursor: str | None,
    ) -> SaveResult:
        # Stamped once the write lock is held: see `write_barrier`.
        moment = _now()
        now = _ts(moment)
        row = db.execute(
            "SELECT id, text FROM posts WHERE source = ? AND channel = ? AND post_id = ?",
            (post.source, post.channel, post.post_id),
        ).fetchone()
        created = row is None
        changed = created or (row is not None and row["text"] != post.text)
        if row is None:
            cur = db.execute(
                "INSERT INTO posts (source, channel, post_id, date, text, url, edited,"
                " forwarded_from, views, media_count, source_id, stored_at, updated_at,"
                " channel_title) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    post.source,
                    post.channel,
                    post.post_id,
                    _ts(post.date),
                    post.text,
                    post.url,
                    int(post.edited),
                    post.forwarded_from,
                    post.views,
                    post.media_count,
                    source_id,
                    now,
                    now,
                    post.channel_title,
                ),
            )
            assert cur.lastrowid is not None
            stored_id = cur.lastrowid
        else:
            stored_id = int(row["id"])
            if changed:
                db.execute(
                    "UPDATE posts SET text = ?, url = COALESCE(?, url), edited = 1,"
                    " updated_at = ? WHERE id = ?",
                    (post.text, post.url, now, stored_id),
                )
            # Views, media and the channel's name change with every read; they are kept,
            # never re-matched.
            db.execute(
                "UPDATE posts SET views = COALESCE(?, views),"
                " media_count = MAX(media_count, ?),"
                " forwarded_from = COALESCE(forwarded_from, ?),"
                " channel_title = COALESCE(?, channel_title) WHERE id = ?",
                (
                    post.views,
                    post.media_count,
                    post.forwarded_from,
                    post.channel_title,
                    stored_id,
                ),
            )
        queued = 0
        if changed and matches:
            queued = self._record_matches(db, stored_id, matches, _us(moment), edit=not created)
        if source_id is not None and cursor is not None:
            db.execute(_SET_CURSOR, (cursor, source_id))
        if source_id is not None and post.channel_title:
            # The source's latest name, for /sources (a channel may rename itself).
            db.execute(
                "UPDATE sources SET title = ? WHERE id = ?", (post.channel_title, source_id)
            )
        return SaveResult(stored_id, created, changed, queued)

    def _record_matches(
        self,
        db: sqlite3.Connection,
        post_id: int,
        matches: list[MatchRecord],
        now: int,
        *,
        edit: bool,
    ) -> int:
        # A query removed while the post was being matched (matching runs on its own thread)
        # must not be named in an alert.
        matches, digest_only = _still_subscribed(db, matches)
        already_alerted: set[int] = set()
        if edit:  # only chats with no match on the post before are told of the edit
            rows = db.execute(
                "SELECT chat_id FROM matches WHERE post_id = ?"
                " UNION SELECT chat_id FROM staged_matches WHERE post_id = ?",
                (post_id, post_id),
            )
            already_alerted = {int(r[0]) for r in rows}
        by_chat: dict[int, list[MatchRecord]] = {}
        for match in matches:
            if match.subscription_id not in digest_only:
                by_chat.setdefault(match.chat_id, []).append(match)
        # A post's rows go in two statements, not one per row: a popular post matches
        # thousands of subscriptions. The matches are staged (clustered by post) and moved
        # into `matches`, indexed by chat, a batch at a time (`merge_matches`).
        staged = db.executemany(
            "INSERT OR IGNORE INTO staged_matches (post_id, subscription_id, chat_id, query,"
            " created_at) VALUES (?, ?, ?, ?, ?)",
            [(post_id, m.subscription_id, m.chat_id, m.query, now) for m in matches],
        ).rowcount
        self._staged += max(staged, 0)
        if self._staged >= MERGE_AT:
            self._merge_in(db)
        # Many chats share a query (and so its words' places in the post): each distinct
        # combination is written as JSON once.
        written: dict[tuple[tuple[str, ...], tuple[Span, ...]], tuple[str, str]] = {}
        alerts = []
        for chat_id, chat_matches in by_chat.items():
            if chat_id in already_alerted:
                continue
            key = (
                tuple(m.query for m in chat_matches),
                tuple(span for m in chat_matches for span in m.spans),
            )
            texts = written.get(key)
            if texts is None:
                spans = sorted({(span.start, span.end) for span in key[1]})
                texts = json.dumps(list(key[0]), ensure_ascii=False), json.dumps(spans)
                written[key] = texts
            alerts.append((post_id, chat_id, *texts, chat_id))
        # A chat that blocked the bot keeps its matches (for /search, its digest after
        # /start) but is sent nothing until it writes /start again. The alerts wait in
        # `fresh_alerts` until the sender files them (`file_alerts`).
        cur = db.executemany(
            "INSERT OR IGNORE INTO fresh_alerts (post_id, chat_id, queries, spans)"
            " SELECT ?, ?, ?, ?"
            " WHERE EXISTS (SELECT 1 FROM subscribers WHERE chat_id = ? AND active = 1)",
            alerts,
        )
        return max(cur.rowcount, 0)

    @staticmethod
    async def _file_queues(db: aiosqlite.Connection, rows: str, params: Sequence[object]) -> None:
        """Add the waiting outbox rows chosen by `rows` to their chats' queue summaries
        (`outbox_queues`, migration 0008), in one statement."""
        await db.execute(
            "INSERT INTO outbox_queues (chat_id, kind, first_id, due_at)"
            " SELECT chat_id, kind, MIN(id), MAX(next_attempt_at) FROM outbox"
            f" WHERE {rows} AND sent_at IS NULL AND failed_at IS NULL"
            " GROUP BY chat_id, kind"
            " ON CONFLICT (chat_id, kind) DO UPDATE SET"
            " first_id = MIN(first_id, excluded.first_id), due_at = MAX(due_at, excluded.due_at)",
            params,
        )

    async def mark_deleted(self, source: str, channel: str, post_id: str) -> bool:
        """The channel deleted a post: keep it, marked deleted. False if we never had it."""
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE posts SET deleted = 1, deleted_at = ? WHERE source = ? AND channel = ?"
                " AND post_id = ? AND deleted = 0",
                (_ts(_now()), source, channel, post_id),
            )
        return cur.rowcount > 0

    async def search_posts(self, words: Sequence[str], limit: int = 20) -> list[StoredPost]:
        """Newest posts containing every word (FTS5; words are quoted, never raw syntax)."""
        terms = " ".join('"' + word.replace('"', '""') + '"' for word in words if word.strip())
        if not terms:
            return []
        rows = await self._all(
            "SELECT posts.* FROM posts_fts JOIN posts ON posts.id = posts_fts.rowid"
            " WHERE posts_fts MATCH ? ORDER BY posts.date DESC LIMIT ?",
            (terms, limit),
        )
        return [_stored_post(row) for row in rows]

    async def recent_posts(self, limit: int, offset: int = 0) -> list[StoredPost]:
        """The newest posts, newest first, skipping `offset`."""
        rows = await self._all(
            "SELECT * FROM posts ORDER BY date DESC, id DESC LIMIT ? OFFSET ?", (limit, offset)
        )
        return [_stored_post(row) for row in rows]

    async def count_posts(self) -> int:
        row = await self._one("SELECT COUNT(*) AS n FROM posts")
        return 0 if row is None else int(row["n"])

    async def count_candidates(self, fts: str) -> int:
        """How many posts the FTS5 expression `fts` admits (built by `matching.candidates`,
        which quotes every term: never user text)."""
        row = await self._read_one(
            "SELECT COUNT(*) AS n FROM posts_fts WHERE posts_fts MATCH ?", (fts,)
        )
        return 0 if row is None else int(row["n"])

    async def candidate_posts(
        self,
        fts: str | None,
        limit: int,
        *,
        before: tuple[datetime, int] | None = None,
        since: datetime | None = None,
        dense: bool = False,
    ) -> list[StoredPost]:
        """Posts the FTS5 expression `fts` admits (every post when None), newest first by
        (date, id), older than the key `before`, not older than `since` — keyset paging, so
        posts stored meanwhile move nothing.

        `dense` (many posts admitted) walks the date index and tests each post against the
        admitted set, stopping at `limit`; otherwise the admitted posts are sorted, which is
        far cheaper when they are few.
        """
        where: list[str] = []
        params: list[object] = []
        if fts is not None:
            where.append("id IN (SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?)")
            params.append(fts)
        if before is not None:
            where.append("(date, id) < (?, ?)")
            params += [_ts(before[0]), before[1]]
        if since is not None:
            where.append("date >= ?")
            params.append(_ts(since))
        index = "INDEXED BY posts_date" if dense or fts is None else ""
        rows = await self._read_all(
            f"SELECT * FROM posts {index} WHERE {' AND '.join(where) or '1'}"
            " ORDER BY date DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [_stored_post(row) for row in rows]

    async def posts_by_ids(self, ids: Sequence[int]) -> list[StoredPost]:
        """The stored posts of these ids, in the order given (ids not found are skipped)."""
        found: dict[int, StoredPost] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            rows = await self._read_all(
                f"SELECT * FROM posts WHERE id IN ({', '.join('?' * len(chunk))})", chunk
            )
            found.update((int(row["id"]), _stored_post(row)) for row in rows)
        return [found[post_id] for post_id in ids if post_id in found]

    # --- subscribers and subscriptions ---------------------------------------------------

    async def upsert_subscriber(
        self, chat_id: int, name: str, *, kind: str = "private", tg_language: str | None = None
    ) -> Subscriber:
        """Create a subscriber, or reactivate one who had blocked the bot; `tg_language` (the
        Telegram language_code of whoever wrote) is remembered when given."""
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO subscribers (chat_id, name, active, created_at, kind, tg_language)"
                " VALUES (?, ?, 1, ?, ?, ?)"
                " ON CONFLICT (chat_id) DO UPDATE SET name = excluded.name, active = 1,"
                " blocked_at = NULL, kind = excluded.kind,"
                " tg_language = COALESCE(excluded.tg_language, tg_language)",
                (chat_id, name[:200], _ts(_now()), kind, tg_language),
            )
        subscriber = await self.get_subscriber(chat_id)
        assert subscriber is not None
        return subscriber

    async def note_language(self, chat_id: int, tg_language: str) -> None:
        """Remember the Telegram language_code of a chat that exists (no row is created)."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE subscribers SET tg_language = ? WHERE chat_id = ?"
                " AND tg_language IS NOT ?",
                (tg_language[:16], chat_id, tg_language[:16]),
            )

    async def update_subscriber(self, chat_id: int, **settings: object) -> Subscriber | None:
        """Change some of a chat's settings (names as in `Subscriber`); None if no such chat."""
        unknown = set(settings) - _SETTABLE
        if unknown:
            raise ValueError(f"not a setting: {', '.join(sorted(unknown))}")
        if settings:
            columns = ", ".join(f"{name} = ?" for name in settings)
            values = [_column_value(value) for value in settings.values()]
            if _DIGEST_SCHEDULE & set(settings):
                columns += ", next_digest_at = ''"
            async with self._transaction() as db:
                await db.execute(
                    f"UPDATE subscribers SET {columns} WHERE chat_id = ?", (*values, chat_id)
                )
        return await self.get_subscriber(chat_id)

    async def get_subscriber(self, chat_id: int) -> Subscriber | None:
        row = await self._one("SELECT * FROM subscribers WHERE chat_id = ?", (chat_id,))
        return None if row is None else _subscriber(row)

    async def active_subscribers(self) -> list[Subscriber]:
        rows = await self._all("SELECT * FROM subscribers WHERE active = 1 ORDER BY chat_id")
        return [_subscriber(row) for row in rows]

    async def deactivate_subscriber(self, chat_id: int) -> None:
        """The chat blocked the bot: keep its data, send nothing until it writes /start."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE subscribers SET active = 0, blocked_at = ? WHERE chat_id = ?",
                (_ts(_now()), chat_id),
            )

    async def move_chat(self, old_id: int, new_id: int) -> bool:
        """A group became a supergroup, which Telegram gives a new id: move the chat's
        settings, queries, matches and unsent messages to `new_id` and forget `old_id`, in
        one transaction. A chat already known under the new id keeps what it has and takes
        only what it lacks (a query both have is kept once, with its matches joined; an
        alert both are waiting for goes once). False, changing nothing, when there is no
        chat under `old_id` (moved already, or never known).

        Written to hold whether or not foreign keys are enforced: the new subscriber is
        made before anything points at it, and nothing is left to cascade.
        """
        if old_id == new_id:
            return False
        now = _ts(_now())
        async with self._transaction() as db:
            old = await self._one("SELECT * FROM subscribers WHERE chat_id = ?", (old_id,))
            if old is None:
                return False
            for statement in _MERGE:  # the chat's matches, all in `matches`
                await db.execute(statement)
            self._staged = 0
            have = await self._one("SELECT 1 FROM subscribers WHERE chat_id = ?", (new_id,))
            if have is None:  # every column copied, so settings added later move too
                columns = list(old.keys())
                values = [
                    new_id if c == "chat_id" else "supergroup" if c == "kind" else old[c]
                    for c in columns
                ]
                await db.execute(
                    f"INSERT INTO subscribers ({', '.join(columns)})"
                    f" VALUES ({', '.join('?' * len(columns))})",
                    values,
                )
            else:
                # A setting is missing when NULL; whether the chat is active (and since
                # when it is blocked) is the new chat's own state.
                own = {"chat_id", "kind", "name", "created_at", "active", "blocked_at"}
                taken = [c for c in old.keys() if c not in own]  # noqa: SIM118 (Row)
                await db.execute(
                    "UPDATE subscribers SET kind = 'supergroup',"
                    " name = CASE WHEN name = '' THEN ? ELSE name END,"
                    " created_at = MIN(created_at, ?)"
                    + "".join(f", {c} = COALESCE({c}, ?)" for c in taken)
                    + " WHERE chat_id = ?",
                    (old["name"], old["created_at"], *(old[c] for c in taken), new_id),
                )
            # A query the new chat has already: its matches join the new chat's query (one
            # on a post the new chat's query matched too is a duplicate), and it goes.
            twins = await self._all(
                "SELECT mine.id AS old_sub, theirs.id AS new_sub FROM subscriptions AS mine"
                " JOIN subscriptions AS theirs ON theirs.chat_id = ? AND theirs.query = mine.query"
                " WHERE mine.chat_id = ?",
                (new_id, old_id),
            )
            for twin in twins:
                await db.execute(
                    "UPDATE OR IGNORE matches SET subscription_id = ?, chat_id = ?"
                    " WHERE subscription_id = ?",
                    (twin["new_sub"], new_id, twin["old_sub"]),
                )
                await db.execute(
                    "DELETE FROM matches WHERE subscription_id = ?", (twin["old_sub"],)
                )
                await db.execute("DELETE FROM subscriptions WHERE id = ?", (twin["old_sub"],))
            await db.execute(
                "UPDATE subscriptions SET chat_id = ? WHERE chat_id = ?", (new_id, old_id)
            )
            await db.execute("UPDATE matches SET chat_id = ? WHERE chat_id = ?", (new_id, old_id))
            # Alerts not filed yet are filed first (one read of `fresh_alerts`: a group
            # becomes a supergroup rarely), then move with the rest.
            await self._file_fresh(db, "chat_id IN (?, ?)", (old_id, new_id), now)
            # Unsent messages keep their ids, order and attempts. An alert the new chat has
            # (sent or waiting) is not sent twice: the old chat's copy is set aside. What was
            # sent or set aside stays as the old chat's history.
            await db.execute(
                "UPDATE OR IGNORE outbox SET chat_id = ? WHERE chat_id = ?"
                " AND sent_at IS NULL AND failed_at IS NULL",
                (new_id, old_id),
            )
            await db.execute(
                "UPDATE outbox SET failed_at = ?, last_error = ? WHERE chat_id = ?"
                " AND sent_at IS NULL AND failed_at IS NULL",
                (now, f"the chat moved to {new_id}, which has this alert already", old_id),
            )
            await db.execute("DELETE FROM subscriptions WHERE chat_id = ?", (old_id,))
            await db.execute("DELETE FROM subscribers WHERE chat_id = ?", (old_id,))
        return True

    async def add_subscription(
        self,
        chat_id: int,
        query: str,
        *,
        limit: int | None = None,
        mode: str = MODE_BOTH,
        preset: str | None = None,
    ) -> Subscription | None:
        """Save a query for a chat; None when the chat already has exactly this query.

        With `limit`, raises TooManySubscriptions when the chat already has that many: the
        count is checked inside the write transaction, so concurrent commands cannot
        overshoot it.
        """
        async with self._transaction() as db:
            if limit is not None:
                row = await self._one(
                    "SELECT COUNT(*) AS n FROM subscriptions WHERE chat_id = ?", (chat_id,)
                )
                count = 0 if row is None else int(row["n"])
                if count >= limit:
                    duplicate = await self._one(
                        "SELECT 1 FROM subscriptions WHERE chat_id = ? AND query = ?",
                        (chat_id, query),
                    )
                    if duplicate is not None:
                        return None
                    raise TooManySubscriptions(count)
            cur = await db.execute(
                "INSERT OR IGNORE INTO subscriptions (chat_id, query, created_at, mode, preset)"
                " VALUES (?, ?, ?, ?, ?)",
                (chat_id, query, _ts(_now()), mode, preset),
            )
            if cur.rowcount == 0:
                return None
            row = await self._one("SELECT * FROM subscriptions WHERE id = ?", (cur.lastrowid,))
        assert row is not None
        return _subscription(row)

    async def remove_subscription(self, subscription_id: int) -> None:
        async with self._transaction() as db:
            await db.execute("DELETE FROM subscriptions WHERE id = ?", (subscription_id,))

    async def get_subscription(self, subscription_id: int) -> Subscription | None:
        row = await self._one("SELECT * FROM subscriptions WHERE id = ?", (subscription_id,))
        return None if row is None else _subscription(row)

    async def update_subscription(
        self, subscription_id: int, *, mode: str | None = None, paused: bool | None = None
    ) -> Subscription | None:
        """Change a query's mode or pause it; None if it no longer exists."""
        if mode is not None and mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        async with self._transaction() as db:
            if mode is not None:
                await db.execute(
                    "UPDATE subscriptions SET mode = ? WHERE id = ?", (mode, subscription_id)
                )
            if paused is not None:
                await db.execute(
                    "UPDATE subscriptions SET paused = ? WHERE id = ?",
                    (int(paused), subscription_id),
                )
        return await self.get_subscription(subscription_id)

    async def remove_preset(self, chat_id: int, preset: str) -> list[Subscription]:
        """Remove every query a chat got with a preset; returns them."""
        async with self._transaction() as db:
            rows = await self._all(
                "SELECT * FROM subscriptions WHERE chat_id = ? AND preset = ? ORDER BY id",
                (chat_id, preset),
            )
            await db.execute(
                "DELETE FROM subscriptions WHERE chat_id = ? AND preset = ?", (chat_id, preset)
            )
        return [_subscription(row) for row in rows]

    async def subscriptions_of(self, chat_id: int) -> list[Subscription]:
        rows = await self._all(
            "SELECT * FROM subscriptions WHERE chat_id = ? ORDER BY id", (chat_id,)
        )
        return [_subscription(row) for row in rows]

    async def active_subscriptions(self) -> list[Subscription]:
        """Every subscription of subscribers who can receive alerts (what the index holds)."""
        rows = await self._all(
            "SELECT subscriptions.* FROM subscriptions JOIN subscribers USING (chat_id)"
            " WHERE subscribers.active = 1 AND subscriptions.paused = 0"
            " ORDER BY subscriptions.id"
        )
        return [_subscription(row) for row in rows]

    # --- stats ---------------------------------------------------------------------------

    async def service_counts(self, since: datetime) -> dict[str, int]:
        """What `/stats` shows: subscribers (and the active ones, not blocked), queries (and
        the paused ones), alerts sent since the UTC day of `since`, and messages waiting to
        be sent to active chats (what the sender still has to do)."""
        row = await self._one(
            "SELECT (SELECT COUNT(*) FROM subscribers) AS subscribers,"
            " (SELECT COUNT(*) FROM subscribers WHERE active = 1) AS active,"
            " (SELECT COUNT(*) FROM subscriptions) AS queries,"
            " (SELECT COUNT(*) FROM subscriptions WHERE paused = 1) AS paused,"
            " (SELECT SUM(alerts) FROM sent_daily WHERE day >= ?) AS alerts,"
            " (SELECT COUNT(*) FROM outbox JOIN subscribers USING (chat_id)"
            "  WHERE sent_at IS NULL AND failed_at IS NULL AND active = 1)"
            " + (SELECT COUNT(*) FROM fresh_alerts JOIN subscribers USING (chat_id)"
            "  WHERE active = 1) AS pending",
            (since.astimezone(UTC).date().isoformat(),),
        )
        assert row is not None
        keys = ("subscribers", "active", "queries", "paused", "alerts", "pending")
        return {key: int(row[key] or 0) for key in keys}

    async def oldest_pending_at(self) -> datetime | None:
        """When the oldest message still waiting for an active chat was queued."""
        row = await self._one(
            "SELECT MIN(oldest) AS oldest FROM (SELECT MIN(outbox.created_at) AS oldest"
            " FROM outbox JOIN subscribers USING (chat_id)"
            " WHERE sent_at IS NULL AND failed_at IS NULL AND active = 1"
            " UNION ALL SELECT posts.updated_at FROM posts WHERE posts.id ="
            " (SELECT MIN(post_id) FROM fresh_alerts JOIN subscribers USING (chat_id)"
            " WHERE active = 1))"
        )
        return None if row is None else _dt(row["oldest"])

    # --- outbox --------------------------------------------------------------------------

    async def pending_chats(
        self, now: datetime, limit: int, *, skip_chats: Collection[int] = ()
    ) -> list[int]:
        """Active chats with something due now (not `skip_chats`), the longest-waiting first.

        A chat's alerts and its digests are two queues, each kept in order: a queue with a
        postponed (or held) message waits whole, and does not hold up the other. Read from
        `outbox_queues` in the order of each queue's oldest row, so the cost follows `limit`,
        not how many messages wait.
        """
        skip = sorted(skip_chats)
        rows = await self._read_all(
            "SELECT outbox_queues.chat_id FROM outbox_queues"
            " JOIN subscribers USING (chat_id)"
            " WHERE outbox_queues.due_at <= ? AND subscribers.active = 1"
            f" AND outbox_queues.chat_id NOT IN ({', '.join('?' * len(skip))})"
            " ORDER BY outbox_queues.first_id LIMIT ?",
            (_ts(now), *skip, limit * 2),  # a chat may be there twice (alerts, digests)
        )
        return list(dict.fromkeys(int(row["chat_id"]) for row in rows))[:limit]

    def claim_as(self, worker: int | None) -> None:
        """Nothing to claim: one process sends from a SQLite file (its lock says so)."""

    async def file_alerts(self, now: datetime | None = None, batch: int = FILE_BATCH) -> int:
        """Move the oldest `batch` alerts from `fresh_alerts` (where ingest writes them,
        clustered by post) into the outbox (rows with delivery state, in their chats'
        queues), in post order, so each chat's alerts stay in order; an alert for a chat
        that has since blocked the bot is filed too, as its other waiting messages stay.
        Returns how many rows left `fresh_alerts` (0: nothing was waiting)."""
        if not await self._fresh_waiting():
            return 0
        async with self._transaction() as db:
            last = await self._one(
                "SELECT post_id, chat_id, COUNT(*) OVER () AS n FROM (SELECT post_id, chat_id"
                " FROM fresh_alerts ORDER BY post_id, chat_id LIMIT ?)"
                " ORDER BY post_id DESC, chat_id DESC LIMIT 1",
                (batch,),
            )
            if last is None:
                return 0
            key = (int(last["post_id"]), int(last["chat_id"]))
            await self._file_fresh(db, "(post_id, chat_id) <= (?, ?)", key, _ts(now or _now()))
        return int(last["n"])

    async def _fresh_waiting(self) -> bool:
        """Whether any alert waits to be filed (a read that does not wait for writers)."""
        return await self._read_one("SELECT 1 FROM fresh_alerts LIMIT 1") is not None

    async def _file_fresh(
        self,
        db: aiosqlite.Connection,
        rows: str,
        params: Sequence[object],
        now: str,
    ) -> int:
        """Move the `fresh_alerts` rows chosen by `rows` into the outbox, due at `now`, in
        post order, and into their chats' queue summaries (a chat that blocked the bot
        meanwhile keeps them there, as it keeps its other waiting messages, until /start).
        Returns how many were filed."""
        top = await self._one("SELECT COALESCE(MAX(id), 0) AS id FROM outbox")
        assert top is not None
        cur = await db.execute(
            "INSERT OR IGNORE INTO outbox (kind, chat_id, post_id, queries, spans,"
            " created_at, next_attempt_at) SELECT 'alert', fresh.chat_id, fresh.post_id,"
            " fresh.queries, fresh.spans, posts.updated_at, ?"
            f" FROM (SELECT * FROM fresh_alerts WHERE {rows}) AS fresh"
            " JOIN posts ON posts.id = fresh.post_id ORDER BY fresh.post_id, fresh.chat_id",
            (now, *params),
        )
        await db.execute(f"DELETE FROM fresh_alerts WHERE {rows}", params)
        await self._file_queues(db, "id > ? AND kind = 'alert'", (int(top["id"]),))
        return max(cur.rowcount, 0)

    async def pending_messages(
        self,
        now: datetime,
        limit: int = 100,
        *,
        chats: Collection[int] | None = None,
        per_chat: int | None = None,
    ) -> list[PendingMessage]:
        """Unsent, not set aside, due now, for active chats (only `chats`, when given, and
        at most `per_chat` of each); oldest first. Only queues (a chat's alerts, its digests)
        due whole are included, as `pending_chats` chooses them."""
        if chats is None:  # (the sender files alerts itself, and chooses the chats)
            await self.file_alerts(now)
            chats = await self.pending_chats(now, limit)
        if not chats:
            return []
        chosen = sorted(chats)
        # A queue (a chat's alerts, its digests) is due whole: its summary says when.
        rows = await self._read_all(
            "SELECT * FROM (SELECT outbox.*, posts.id AS p_id, posts.source AS p_source,"
            " posts.channel AS p_channel, posts.post_id AS p_post_id, posts.date AS p_date,"
            " posts.text AS p_text, posts.url AS p_url, posts.edited AS p_edited,"
            " posts.deleted AS p_deleted, posts.forwarded_from AS p_forwarded_from,"
            " posts.views AS p_views, posts.media_count AS p_media_count,"
            " posts.channel_title AS p_channel_title,"
            " ROW_NUMBER() OVER (PARTITION BY outbox.chat_id ORDER BY outbox.id) AS nth"
            " FROM outbox JOIN outbox_queues ON outbox_queues.chat_id = outbox.chat_id"
            " AND outbox_queues.kind = outbox.kind"
            " LEFT JOIN posts ON posts.id = outbox.post_id"
            " WHERE outbox.sent_at IS NULL AND outbox.failed_at IS NULL"
            f" AND outbox.chat_id IN ({', '.join('?' * len(chosen))})"
            " AND outbox_queues.due_at <= ?)"
            " WHERE nth <= ? ORDER BY id LIMIT ?",
            (*chosen, _ts(now), per_chat or limit, limit),
        )
        return [_pending(row) for row in rows]

    async def next_attempt_at(self) -> datetime | None:
        """When the next queue becomes due (None if nothing is pending): a queue waits for
        its latest postponed message, as in `pending_chats`, so a new alert behind held ones
        does not look due."""
        if await self._fresh_waiting():
            return _now()  # alerts to file (`pending_chats` does)
        row = await self._read_one(
            "SELECT outbox_queues.due_at AS due FROM outbox_queues"
            " JOIN subscribers USING (chat_id) WHERE subscribers.active = 1"
            " ORDER BY outbox_queues.due_at LIMIT 1"
        )
        return None if row is None else _dt(row["due"])

    async def hold_alerts(self, chat_id: int, until: datetime) -> int:
        """Postpone every alert waiting for a chat to `until` (it is muted or quiet), counting
        no attempt; returns how many were moved."""
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE chat_id = ? AND kind = 'alert'"
                " AND sent_at IS NULL AND failed_at IS NULL AND next_attempt_at < ?",
                (_ts(until), chat_id, _ts(until)),
            )
        return cur.rowcount

    async def release_alerts(self, chat_id: int, now: datetime | None = None) -> int:
        """Make a chat's waiting alerts due now (its mute or quiet hours changed): the outbox
        decides afresh whether they go or wait. Returns how many were moved."""
        moment = _ts(now or _now())
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE chat_id = ? AND kind = 'alert'"
                " AND sent_at IS NULL AND failed_at IS NULL AND next_attempt_at > ?",
                (moment, chat_id, moment),
            )
        return cur.rowcount

    async def mark_sent(self, ids: int | Collection[int]) -> None:
        """Telegram accepted the message carrying these rows (counted for its UTC day in
        `sent_daily` by a trigger: the rows themselves are pruned soon after)."""
        await self._update_outbox("sent_at = ?", (_ts(_now()),), ids)

    async def prune_finished(
        self, sent_before: datetime, failed_before: datetime, *, batch: int = PRUNE_BATCH * 10
    ) -> int:
        """Delete outbox rows sent before `sent_before` or set aside before `failed_before`
        (those are kept longer, to be looked into), `batch` per transaction with a turn for
        the event loop between; returns how many. Rows still waiting are never touched."""
        # Both read the `outbox_finished` index (its expression, oldest first).
        finished = "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE {} IS NOT NULL"
        finished += " AND (sent_at IS NOT NULL OR failed_at IS NOT NULL)"
        finished += " AND COALESCE(sent_at, failed_at) < ? LIMIT ?)"
        sent = await self._delete_in_batches(finished.format("sent_at"), _ts(sent_before), batch)
        failed = await self._delete_in_batches(
            finished.format("failed_at"), _ts(failed_before), batch
        )
        return sent + failed

    async def _delete_in_batches(
        self,
        sql: str,
        before: str,
        batch: int,
        stop: Callable[[], bool] | None = None,
    ) -> int:
        """Run `sql` (a DELETE taking `before` and a LIMIT) one transaction at a time until
        it deletes fewer than `batch`, the event loop getting a turn between; `stop`, asked
        before each batch, ends it early. Returns how many rows went."""
        total = 0
        while stop is None or not stop():
            async with self._transaction() as db:
                cur = await db.execute(sql, (before, batch))
            total += cur.rowcount
            if cur.rowcount < batch:
                break
            await asyncio.sleep(0)
        return total

    async def postpone(self, ids: int | Collection[int], until: datetime, error: str) -> None:
        """A transient failure: try again at `until`."""
        await self._update_outbox(
            "next_attempt_at = ?, last_error = ?", (_ts(until), self._redact(error)[:500]), ids
        )

    async def set_aside(self, ids: int | Collection[int], reason: str) -> None:
        """A permanent failure (e.g. Telegram rejected the text): keep the rows, never retry."""
        await self._update_outbox(
            "failed_at = ?, last_error = ?", (_ts(_now()), self._redact(reason)[:500]), ids
        )

    async def set_aside_chat(self, chat_id: int, reason: str) -> int:
        """Set aside everything still waiting for a chat (it blocked the bot); how many."""
        now = _ts(_now())
        async with self._transaction() as db:
            # Alerts not filed yet are filed, then set aside with the rest (one read of
            # `fresh_alerts`, which has no index by chat: a chat blocks the bot rarely).
            await self._file_fresh(db, "chat_id = ?", (chat_id,), now)
            cur = await db.execute(
                "UPDATE outbox SET failed_at = ?, last_error = ?"
                " WHERE chat_id = ? AND sent_at IS NULL AND failed_at IS NULL",
                (now, self._redact(reason)[:500], chat_id),
            )
        return cur.rowcount

    async def _update_outbox(
        self, changes: str, params: Sequence[object], ids: int | Collection[int]
    ) -> None:
        chosen = [ids] if isinstance(ids, int) else sorted(ids)
        if not chosen:
            return
        async with self._transaction() as db:
            await db.execute(
                f"UPDATE outbox SET {changes}, attempts = attempts + 1"
                f" WHERE id IN ({', '.join('?' * len(chosen))})",
                (*params, *chosen),
            )

    async def outbox_counts(self) -> dict[str, int]:
        """How many outbox rows are pending, sent and set aside."""
        row = await self._one(
            "SELECT COALESCE(SUM(sent_at IS NULL AND failed_at IS NULL), 0)"
            " + (SELECT COUNT(*) FROM fresh_alerts) AS pending,"
            " SUM(sent_at IS NOT NULL) AS sent, SUM(failed_at IS NOT NULL) AS failed FROM outbox"
        )
        assert row is not None
        return {key: int(row[key] or 0) for key in ("pending", "sent", "failed")}

    # --- retention -----------------------------------------------------------------------

    async def prune(
        self,
        before: datetime,
        *,
        batch: int = PRUNE_BATCH,
        stop: Callable[[], bool] | None = None,
    ) -> Pruned:
        """Delete what is older than `before`, `batch` posts (or digests) per transaction.

        A post goes once its date, its storing and its last edit all lie before `before` (a
        feed's archive read today stays for the full period), with its matches, its sent or
        set-aside alerts and its full-text entry (a trigger). A post with a message still
        waiting stays until that message is sent or set aside; each source's newest
        `KEEP_PER_SOURCE` posts stay too. Digests sent or set aside before `before` go.
        Between transactions the event loop gets a turn, so ingest and replies wait for
        one batch at most; `stop`, asked before each batch, ends the run early.
        """
        cutoff = _ts(before)
        total = Pruned()
        while stop is None or not stop():
            done = await self._prune_posts(cutoff, batch)
            total += done
            if done.posts < batch:
                break
            await asyncio.sleep(0)
        digests = await self._delete_in_batches(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
            " WHERE post_id IS NULL AND COALESCE(sent_at, failed_at) < ? ORDER BY id LIMIT ?)",
            cutoff,
            batch,
            stop,
        )
        return total + Pruned(messages=digests)

    async def _prune_posts(self, cutoff: str, batch: int) -> Pruned:
        """One transaction of `prune`: the oldest prunable posts, chosen and deleted at once
        (so no alert can be queued for them in between)."""
        async with self._transaction() as db:
            rows = await self._all(
                "SELECT id FROM posts WHERE date < ? AND stored_at < ? AND updated_at < ?"
                " AND id NOT IN (SELECT post_id FROM outbox WHERE sent_at IS NULL"
                "  AND failed_at IS NULL AND post_id IS NOT NULL)"
                " AND id NOT IN (SELECT post_id FROM fresh_alerts)"
                # Older than the source's newest posts (NULL, so kept, when it has fewer).
                " AND (source_id IS NULL OR stored_at < (SELECT newer.stored_at FROM posts"
                "  AS newer WHERE newer.source_id = posts.source_id"
                "  ORDER BY newer.stored_at DESC LIMIT 1 OFFSET ?))"
                " ORDER BY date LIMIT ?",
                (cutoff, cutoff, cutoff, KEEP_PER_SOURCE - 1, batch),
            )
            ids = [int(row["id"]) for row in rows]
            if not ids:
                return Pruned()
            marks = ", ".join("?" * len(ids))
            found = await self._one(
                f"SELECT (SELECT COUNT(*) FROM matches WHERE post_id IN ({marks}))"
                f" + (SELECT COUNT(*) FROM staged_matches WHERE post_id IN ({marks})) AS n",
                ids + ids,
            )
            # Only finished rows are left for these posts; the matches go by cascade.
            outbox = await db.execute(f"DELETE FROM outbox WHERE post_id IN ({marks})", ids)
            gone = await db.execute(f"DELETE FROM posts WHERE id IN ({marks})", ids)
        return Pruned(gone.rowcount, int(found["n"]) if found else 0, outbox.rowcount)

    # --- digests -------------------------------------------------------------------------

    async def due_for_digest(
        self, now: datetime, limit: int, *, after: tuple[datetime | None, int] | None = None
    ) -> list[Subscriber]:
        """Active chats whose next digest is due by `now`, or not yet worked out (one range
        read of the `subscribers_next_digest` index), the longest-due first; `after` (the
        last chat's next digest time and id) reads the next page."""
        start = "" if after is None or after[0] is None else _ts(after[0])
        last_chat = -(2**63) if after is None else after[1]
        rows = await self._read_all(
            "SELECT * FROM subscribers WHERE active = 1 AND next_digest_at <= ?"
            " AND next_digest_at >= ? AND (next_digest_at, chat_id) > (?, ?)"
            " ORDER BY next_digest_at, chat_id LIMIT ?",
            (_ts(now), start, start, last_chat, limit),
        )
        return [_subscriber(row) for row in rows]

    async def schedule_digests(self, schedule: Collection[tuple[int, datetime]]) -> None:
        """Store when each chat's next digest is due (chat id, moment)."""
        if not schedule:
            return
        async with self._transaction() as db:
            await db.executemany(
                "UPDATE subscribers SET next_digest_at = ? WHERE chat_id = ?",
                [(_ts(at), chat_id) for chat_id, at in schedule],
            )

    async def reschedule_all_digests(self) -> None:
        """Have every chat's next digest worked out again (at start: the service's digest
        time or zone may have changed since the due times were stored)."""
        async with self._transaction() as db:
            await db.execute("UPDATE subscribers SET next_digest_at = '' WHERE active = 1")

    async def digest_entries(
        self, chat_id: int, since: datetime, until: datetime
    ) -> list[DigestEntry]:
        """Posts matched for a chat in (since, until], oldest first, with the queries matched."""
        return (await self.digest_entries_of({chat_id: since}, until)).get(chat_id, [])

    async def digest_entries_of(
        self,
        since: Mapping[int, datetime],
        until: datetime,
        *,
        known: dict[int, StoredPost] | None = None,
    ) -> dict[int, list[DigestEntry]]:
        """For many chats at once (chat id → the start of its period), the posts matched in
        (since, until], oldest first, each with the queries that matched it in the order
        the chat saved them; queries in instant-alerts-only mode are left out. `known`:
        posts already read (by id), used and added to, so that a post many chats matched
        is read once."""
        await self.merge_matches()
        posts = known if known is not None else {}
        pairs: list[tuple[int, int, tuple[str, ...]]] = []
        for chunk in _chunks(sorted(since.items()), _CHATS_PER_READ):
            rows = await self._read_all(
                f"WITH due (chat_id, since) AS (VALUES {_rows(len(chunk), 2)})"
                " SELECT due.chat_id AS due_chat, matches.post_id AS post_id,"
                " json_group_array(json_array(matches.subscription_id, matches.query))"
                " AS queries FROM due"
                " JOIN matches ON matches.chat_id = due.chat_id"
                " AND matches.created_at > due.since AND matches.created_at <= ?"
                " LEFT JOIN subscriptions ON subscriptions.id = matches.subscription_id"
                " WHERE COALESCE(subscriptions.mode, 'both') != 'instant'"
                " GROUP BY due.chat_id, matches.post_id",
                (*[value for chat_id, at in chunk for value in (chat_id, _us(at))], _us(until)),
            )
            for number, row in enumerate(rows):
                if number % _ROWS_PER_TURN == _ROWS_PER_TURN - 1:
                    await asyncio.sleep(0)  # thousands of rows: the event loop gets turns
                queries = _queries_in_order(row["queries"])
                pairs.append((int(row["due_chat"]), int(row["post_id"]), queries))
        missing = sorted({post_id for _, post_id, _ in pairs if post_id not in posts})
        for post in await self.posts_by_ids(missing):
            posts[post.id] = post
        entries: dict[int, list[DigestEntry]] = {}
        for chat_id, post_id, queries in pairs:
            stored = posts.get(post_id)
            if stored is not None:
                entries.setdefault(chat_id, []).append(DigestEntry(stored, queries))
        for chat_entries in entries.values():
            chat_entries.sort(key=lambda entry: (entry.post.post.date, entry.post.id))
        return entries

    async def mention_counts(
        self,
        shifts: Mapping[int, ZoneShift],
        since: datetime,
        until: datetime,
        *,
        digest_queries: bool = False,
    ) -> dict[int, dict[str, dict[date, int]]]:
        """Posts per local day per query for many chats (chat id → its zone's UTC offsets,
        as `bot.digest.zone_shift` gives them), counted by the post's date, for the chat's
        current queries (only those that go into the digest, with `digest_queries`) matched
        in [since, until)."""
        await self.merge_matches()
        counts: dict[int, dict[str, dict[date, int]]] = {}
        mode = " AND subscriptions.mode != 'instant'" if digest_queries else ""
        for chunk in _chunks(sorted(shifts.items()), _CHATS_PER_READ):
            values: list[object] = []
            for chat_id, (before, change, after) in chunk:
                values += [
                    chat_id,
                    f"{before:+d} minutes",
                    _ts(change) if change else "",
                    f"{after:+d} minutes",
                ]
            rows = await self._read_all(
                "WITH due (chat_id, before, change, after) AS"
                f" (VALUES {_rows(len(chunk), 4)})"
                " SELECT due.chat_id AS chat_id, matches.query AS query,"
                " date(posts.date, CASE WHEN posts.date < due.change THEN due.before"
                " ELSE due.after END) AS day, COUNT(DISTINCT posts.id) AS n FROM due"
                " JOIN matches ON matches.chat_id = due.chat_id"
                " AND matches.created_at >= ? AND matches.created_at < ?"
                " JOIN subscriptions ON subscriptions.chat_id = matches.chat_id"
                f" AND subscriptions.query = matches.query{mode}"
                " JOIN posts ON posts.id = matches.post_id"
                " GROUP BY due.chat_id, matches.query, day",
                (*values, _us(since), _us(until)),
            )
            for number, row in enumerate(rows):
                if number % _ROWS_PER_TURN == _ROWS_PER_TURN - 1:
                    await asyncio.sleep(0)
                day = date.fromisoformat(row["day"])
                per_query = counts.setdefault(int(row["chat_id"]), {})
                per_query.setdefault(row["query"], {})[day] = int(row["n"])
        return counts

    async def write_barrier(self) -> datetime:
        """The time now, taken while no write is in progress (here or in another process):
        every match stamped before it is committed, every later one is stamped after it —
        the end of a digest's period, so that no match falls between two digests. The
        matches staged until then are merged (`merge_matches`) in the same transaction, so
        a read by chat up to this time sees them all."""

        def merged(db: sqlite3.Connection) -> datetime:
            self._merge_in(db)
            return _now()

        return await self._transaction_on_thread(merged)

    async def merge_matches(self) -> int:
        """Move the staged matches (`staged_matches`: a post's matches, clustered by post)
        into `matches`, sorted by chat, in one transaction; how many moved. Every read of
        matches by chat calls it first (a quick look when nothing is staged)."""
        waiting = await self._read_one("SELECT EXISTS (SELECT 1 FROM staged_matches) AS n")
        if waiting is None or not waiting["n"]:
            return 0
        return await self._transaction_on_thread(self._merge_in)

    def _merge_in(self, db: sqlite3.Connection) -> int:
        """`merge_matches`' statements, in the caller's transaction on the database's
        thread; how many moved."""
        db.execute(_MERGE[0])
        moved = max(db.execute(_MERGE[1]).rowcount, 0)
        self._staged = 0
        return moved

    async def query_order(self, chat_ids: Sequence[int]) -> dict[int, list[str]]:
        """Each chat's queries in the order it saved them."""
        order: dict[int, list[str]] = {}
        for chunk in _chunks(sorted(set(chat_ids)), _CHATS_PER_READ * 2):
            rows = await self._read_all(
                "SELECT chat_id, query FROM subscriptions"
                f" WHERE chat_id IN ({', '.join('?' * len(chunk))}) ORDER BY chat_id, id",
                chunk,
            )
            for row in rows:
                order.setdefault(int(row["chat_id"]), []).append(row["query"])
        return order

    async def queue_digest(self, chat_id: int, parts: Sequence[str], until: datetime) -> None:
        """Queue a digest's messages and move the chat's digest mark, in one transaction."""
        await self.queue_digests([QueuedDigest(chat_id, tuple(parts), until)])

    async def queue_digests(self, digests: Sequence[QueuedDigest]) -> None:
        """Queue many chats' digests (their messages, then the chart) and move each chat's
        digest mark and next due time, in one transaction."""
        if not digests:
            return
        now = _ts(_now())
        rows: list[tuple[object, ...]] = []
        for digest in digests:
            rows.extend((digest.chat_id, part, None, now, now) for part in digest.parts)
            if digest.chart is not None:
                rows.append((digest.chat_id, digest.chart, MEDIA_CHART, now, now))
        chats = sorted({d.chat_id for d in digests if d.parts or d.chart is not None})
        async with self._transaction() as db:
            # A chat's alerts not filed yet go before its digest, as they were queued
            # before it (one read of `fresh_alerts` per chunk of chats).
            for chunk in _chunks(chats, _CHATS_PER_READ * 5):
                marks = ", ".join("?" * len(chunk))
                await self._file_fresh(db, f"chat_id IN ({marks})", chunk, now)
            await db.executemany(
                "INSERT INTO outbox (kind, chat_id, text, media, created_at, next_attempt_at)"
                " VALUES ('digest', ?, ?, ?, ?, ?)",
                rows,
            )
            for chunk in _chunks(chats, _CHATS_PER_READ * 5):
                marks = ", ".join("?" * len(chunk))
                await self._file_queues(db, f"chat_id IN ({marks}) AND kind = 'digest'", chunk)
            await db.executemany(
                "UPDATE subscribers SET last_digest_at = ?,"
                " next_digest_at = COALESCE(?, next_digest_at) WHERE chat_id = ?",
                [
                    (_ts(d.until), None if d.next_at is None else _ts(d.next_at), d.chat_id)
                    for d in digests
                ],
            )

    async def matched_posts(
        self,
        chat_id: int,
        since: datetime,
        limit: int,
        *,
        before: tuple[datetime, int] | None = None,
    ) -> list[DigestEntry]:
        """Posts matched for a chat since `since` (the time of the match), newest first by
        (date, id) and older than the key `before` (keyset paging, for /export), each with
        every query that matched it, in the order the chat saved them, whatever their mode.
        """
        await self.merge_matches()
        after = ""
        params: list[object] = [chat_id, _us(since)]
        if before is not None:
            after = " AND (posts.date, posts.id) < (?, ?)"
            params += [_ts(before[0]), before[1]]
        rows = await self._read_all(
            "SELECT posts.*,"
            " json_group_array(json_array(matches.subscription_id, matches.query)) AS queries"
            " FROM matches JOIN posts ON posts.id = matches.post_id"
            f" WHERE matches.chat_id = ? AND matches.created_at >= ?{after}"
            " GROUP BY posts.id ORDER BY posts.date DESC, posts.id DESC LIMIT ?",
            (*params, limit),
        )
        entries = []
        for row in rows:
            entries.append(DigestEntry(_stored_post(row), _queries_in_order(row["queries"])))
        return entries


MERGE_AT = 200_000  # staged matches that make ingest merge them (`Storage.merge_matches`)
_MERGE = (
    # Sorted by chat, the index by chat takes the batch in order (each of its pages once);
    # the rows themselves land at the end of `matches` (newer posts), a few pages.
    "INSERT OR IGNORE INTO matches (post_id, subscription_id, chat_id, query, created_at)"
    " SELECT post_id, subscription_id, chat_id, query, created_at FROM staged_matches"
    " ORDER BY chat_id, created_at",
    "DELETE FROM staged_matches",
)


def _still_subscribed(
    db: sqlite3.Connection, matches: list[MatchRecord]
) -> tuple[list[MatchRecord], set[int]]:
    """The matches whose query still exists and is not paused, each under the chat that has
    the query now (a group that became a supergroup meanwhile took it along), and the ids
    of those in digest-only mode (recorded for the digest, never alerted)."""
    ids = sorted({match.subscription_id for match in matches})
    existing: dict[int, int] = {}  # subscription → its chat
    digest_only: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = db.execute(
            f"SELECT id, chat_id, mode FROM subscriptions WHERE paused = 0"
            f" AND id IN ({', '.join('?' * len(chunk))})",
            chunk,
        )
        for row in rows:
            existing[int(row[0])] = int(row[1])
            if row[2] == MODE_DIGEST:
                digest_only.add(int(row[0]))
    kept = []
    for match in matches:
        chat_id = existing.get(match.subscription_id)
        if chat_id == match.chat_id:
            kept.append(match)
        elif chat_id is not None:
            kept.append(replace(match, chat_id=chat_id))
    return kept, digest_only


def _queries_in_order(matched: str) -> tuple[str, ...]:
    """The queries of `json_group_array(json_array(subscription_id, query))`, once each, in
    the order the chat saved them (by subscription id)."""
    found = json.loads(matched)
    if len(found) == 1:  # most posts: one query
        return (str(found[0][1]),)
    return tuple(dict.fromkeys(str(query) for _, query in sorted(found, key=lambda m: m[0])))


def _stored_post(row: sqlite3.Row, prefix: str = "") -> StoredPost:
    # A query that does not select the title (none should) shows the bare channel instead.
    # (`in row` would look among a Row's values: its keys are asked for by name.)
    title_key = f"{prefix}channel_title"
    post = Post(
        source=row[f"{prefix}source"],
        channel=row[f"{prefix}channel"],
        post_id=row[f"{prefix}post_id"],
        date=datetime.fromisoformat(row[f"{prefix}date"]),
        text=row[f"{prefix}text"],
        url=row[f"{prefix}url"],
        edited=bool(row[f"{prefix}edited"]),
        forwarded_from=row[f"{prefix}forwarded_from"],
        views=row[f"{prefix}views"],
        media_count=int(row[f"{prefix}media_count"]),
        channel_title=row[title_key] if title_key in row.keys() else None,  # noqa: SIM118
    )
    return StoredPost(int(row[f"{prefix}id"]), post, deleted=bool(row[f"{prefix}deleted"]))


# Settings `update_subscriber` may change (the Subscriber fields of the same names).
_SETTABLE = {
    "language",
    "timezone",
    "digest_time",
    "digest_enabled",
    "muted_until",
    "quiet_start",
    "quiet_end",
    "link_previews",
    "introduced_at",
    "digest_quiet_days",
    "digest_chart",
}
# Settings that move the next digest: it is worked out again at the next digest job.
_DIGEST_SCHEDULE = {"timezone", "digest_time", "digest_enabled"}


def _column_value(value: object) -> object:
    if isinstance(value, datetime):
        return _ts(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _subscriber(row: sqlite3.Row) -> Subscriber:
    created = _dt(row["created_at"])
    assert created is not None
    return Subscriber(
        chat_id=int(row["chat_id"]),
        name=row["name"],
        active=bool(row["active"]),
        created_at=created,
        last_digest_at=_dt(row["last_digest_at"]),
        language=row["language"],
        tg_language=row["tg_language"],
        kind=row["kind"],
        timezone=row["timezone"],
        digest_time=row["digest_time"],
        digest_enabled=bool(row["digest_enabled"]),
        muted_until=_dt(row["muted_until"]),
        quiet_start=row["quiet_start"],
        quiet_end=row["quiet_end"],
        link_previews=bool(row["link_previews"]),
        introduced_at=_dt(row["introduced_at"]),
        next_digest_at=_dt(row["next_digest_at"] or None),
        digest_quiet_days=bool(row["digest_quiet_days"]),
        digest_chart=bool(row["digest_chart"]),
    )


def _subscription(row: sqlite3.Row) -> Subscription:
    created = _dt(row["created_at"])
    assert created is not None
    return Subscription(
        int(row["id"]),
        int(row["chat_id"]),
        row["query"],
        created,
        mode=row["mode"],
        paused=bool(row["paused"]),
        preset=row["preset"],
    )


def _pending(row: sqlite3.Row) -> PendingMessage:
    post = _stored_post(row, "p_") if row["p_id"] is not None else None
    return PendingMessage(
        id=int(row["id"]),
        kind=row["kind"],
        chat_id=int(row["chat_id"]),
        attempts=int(row["attempts"]),
        post=post,
        queries=tuple(json.loads(row["queries"])),
        spans=tuple(Span(start, end) for start, end in json.loads(row["spans"])),
        text=row["text"],
        media=row["media"],
    )


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _rows(count: int, width: int) -> str:
    """`(?, ?), (?, ?)`: placeholders for `count` rows of `width` values (a VALUES list)."""
    row = "(" + ", ".join("?" * width) + ")"
    return ", ".join([row] * count)
