"""PostgreSQL: sources, posts and a post's matches and alerts (a part of `PostgresStorage`).

Several workers may save posts at once. A post is upserted under its unique key (a post read
by two workers together is stored once), and its matches and alerts are written by one
statement that also checks, at that moment, which of the matched queries still exist.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import sql

from bot.domain import MODE_DIGEST, Post, SourceInfo, Span, StoredPost
from bot.storage.postgres import engine
from bot.storage.postgres.engine import Connection, PostgresBase, Row, stored_post
from bot.storage.records import RHYTHM_MIN_POSTS, RHYTHM_POSTS, MatchRecord, SaveResult

_INSERT_POST = (
    "INSERT INTO posts (source, channel, post_id, date, text, url, edited, forwarded_from,"
    " views, media_count, source_id, stored_at, updated_at, channel_title)"
    " VALUES (%(source)s, %(channel)s, %(post_id)s, %(date)s, %(text)s, %(url)s, %(edited)s,"
    " %(forwarded_from)s, %(views)s, %(media_count)s, %(source_id)s, %(now)s, %(now)s,"
    " %(channel_title)s)"
    " ON CONFLICT (source, channel, post_id) DO NOTHING RETURNING id"
)
# A post read again: a changed text is an edit; views, media and the channel's name change
# with every read and are kept, never re-matched. The row is locked first, so `changed`
# compares with the text as the last writer left it.
_UPDATE_POST = (
    "WITH old AS (SELECT id, text FROM posts WHERE source = %(source)s"
    " AND channel = %(channel)s AND post_id = %(post_id)s FOR UPDATE)"
    " UPDATE posts SET text = %(text)s,"
    " url = CASE WHEN old.text <> %(text)s THEN COALESCE(%(url)s, posts.url) ELSE posts.url END,"
    " edited = posts.edited OR old.text <> %(text)s,"
    " updated_at = CASE WHEN old.text <> %(text)s THEN %(now)s ELSE posts.updated_at END,"
    " views = COALESCE(%(views)s, posts.views),"
    " media_count = GREATEST(posts.media_count, %(media_count)s),"
    " forwarded_from = COALESCE(posts.forwarded_from, %(forwarded_from)s),"
    " channel_title = COALESCE(%(channel_title)s, posts.channel_title)"
    " FROM old WHERE posts.id = old.id RETURNING posts.id, old.text <> %(text)s AS changed"
)
# A post's matches and alerts in one statement (a popular post matches thousands of
# subscriptions). Only queries that exist and are not paused at this moment count, each
# under the chat that has it now (a group that became a supergroup took it along): a query
# removed while the post was being matched must not be named in an alert. Digest-only
# queries are recorded, never alerted; on an edit (`already`: read before this statement's
# own matches), only chats with no match on the post before are alerted. A chat that blocked
# the bot keeps its matches but gets no alert. A post's alerts wait in one `fresh_alerts` row
# (migration 0006); on an edit, the new chats' alerts join those still waiting.
_RECORD_MATCHES = """
WITH given AS (
    SELECT * FROM unnest(%(subscriptions)s::bigint[], %(queries)s::text[])
        WITH ORDINALITY AS given (subscription_id, query, ord)
), kept AS (
    SELECT given.ord, given.subscription_id, subscriptions.chat_id, given.query,
        subscriptions.mode = %(digest)s AS digest_only
    FROM given JOIN subscriptions ON subscriptions.id = given.subscription_id
    WHERE NOT subscriptions.paused
), recorded AS (
    INSERT INTO matches (post_id, subscription_id, chat_id, query, created_at)
    SELECT %(post)s, subscription_id, chat_id, query, %(now)s FROM kept
    ON CONFLICT DO NOTHING
), already AS (
    SELECT DISTINCT chat_id FROM matches WHERE %(edit)s AND post_id = %(post)s
), alerting AS (
    SELECT * FROM kept
    WHERE NOT digest_only AND chat_id NOT IN (SELECT chat_id FROM already)
), spans AS (
    SELECT chat_id, jsonb_agg(jsonb_build_array(start, stop) ORDER BY start, stop) AS spans
    FROM (
        SELECT DISTINCT alerting.chat_id, span.start, span.stop
        FROM alerting JOIN unnest(%(span_of)s::bigint[], %(starts)s::int[], %(stops)s::int[])
            AS span (ord, start, stop) ON span.ord = alerting.ord
    ) AS distinct_spans
    GROUP BY chat_id
), alerts AS (
    SELECT alerting.chat_id, jsonb_build_object('chat_id', alerting.chat_id,
        'queries', jsonb_agg(alerting.query ORDER BY alerting.ord),
        'spans', COALESCE(spans.spans, '[]')) AS alert
    FROM alerting
    JOIN subscribers ON subscribers.chat_id = alerting.chat_id AND subscribers.active
    LEFT JOIN spans ON spans.chat_id = alerting.chat_id
    GROUP BY alerting.chat_id, spans.spans
), queued AS (
    INSERT INTO fresh_alerts AS fresh (post_id, chats, alerts)
    SELECT %(post)s, array_agg(chat_id ORDER BY chat_id), jsonb_agg(alert ORDER BY chat_id)
    FROM alerts HAVING COUNT(*) > 0
    ON CONFLICT (post_id) DO UPDATE SET (chats, alerts) = (
        SELECT array_agg(merged.chat_id ORDER BY merged.chat_id),
            jsonb_agg(merged.alert ORDER BY merged.chat_id)
        FROM (
            SELECT (alert ->> 'chat_id')::bigint AS chat_id, alert
            FROM jsonb_array_elements(fresh.alerts || excluded.alerts) AS alert
        ) AS merged
    )
)
SELECT COUNT(*) AS queued FROM alerts
"""
# A new post's matches and alerts as ingest prepared them (the usual case): the alerts, one
# per chat, come ready-made, and are queued as given only when every match still holds as
# matched (the subscription there, under that chat, not paused, of the same mode) and every
# chat alerted is active; `whole` says so. Otherwise the matches that hold are recorded and
# nothing is queued: `_RECORD_MATCHES` then works the alerts out (it records nothing twice).
# Building a post's alerts in SQL (grouping, span sets, JSON) cost the server more than
# writing its matches.
_RECORD_PREPARED = """
WITH given AS (
    SELECT * FROM unnest(%(subscriptions)s::bigint[], %(chats)s::bigint[], %(queries)s::text[],
        %(digest_only)s::boolean[]) AS given (subscription_id, chat_id, query, digest_only)
), kept AS (
    SELECT given.* FROM given JOIN subscriptions ON subscriptions.id = given.subscription_id
        AND subscriptions.chat_id = given.chat_id AND NOT subscriptions.paused
        AND (subscriptions.mode = %(digest)s) = given.digest_only
), recorded AS (
    INSERT INTO matches (post_id, subscription_id, chat_id, query, created_at)
    SELECT %(post)s, subscription_id, chat_id, query, %(now)s FROM kept
    ON CONFLICT DO NOTHING
), verdict AS (
    SELECT (SELECT COUNT(*) FROM kept) = cardinality(%(subscriptions)s::bigint[])
        AND NOT EXISTS (
            SELECT 1 FROM subscribers WHERE subscribers.chat_id = ANY(%(alerted)s::bigint[])
            AND NOT subscribers.active
        ) AS whole
), queued AS (
    INSERT INTO fresh_alerts (post_id, chats, alerts)
    SELECT %(post)s, %(alerted)s::bigint[], %(alerts)s::jsonb FROM verdict
    WHERE verdict.whole AND cardinality(%(alerted)s::bigint[]) > 0
)
SELECT whole FROM verdict
"""
# Only the cursor: a cursor written in the middle of a read says nothing about whether the
# read will succeed. Health is recorded from outcomes alone.
_SET_CURSOR = "UPDATE sources SET cursor = %s WHERE id = %s"
_LIST_SOURCES = """
SELECT sources.*,
    (SELECT COUNT(*) FROM posts WHERE posts.source_id = sources.id
        AND posts.stored_at > %(since)s) AS posts_24h,
    (SELECT MAX(stored_at) FROM posts WHERE posts.source_id = sources.id) AS last_post,
    rhythm.posts AS rhythm_posts, rhythm.gap AS usual_gap
FROM sources
CROSS JOIN LATERAL (
    SELECT COUNT(*) AS posts, MAX(newer - older) AS gap
    FROM (
        SELECT stored_at AS newer, lead(stored_at) OVER (ORDER BY stored_at DESC) AS older
        FROM (
            SELECT stored_at FROM posts WHERE posts.source_id = sources.id
            ORDER BY stored_at DESC LIMIT %(rhythm)s
        ) AS last_posts
    ) AS gaps
) AS rhythm
WHERE sources.enabled OR NOT %(enabled_only)s
ORDER BY sources.id
"""
# Matches a post at least as many as this are written out for the database on a thread.
PREPARE_ON_THREAD = 50
_SEARCH_WORD = sql.SQL("phraseto_tsquery('pg_catalog.simple', dozor_search_text({}))")


class SourcesAndPosts(PostgresBase):
    """The sources watched and their health, and the posts they brought: stored, edited,
    deleted, searched, and saved with their matches and alerts."""

    # --- sources -------------------------------------------------------------------------

    async def ensure_source(
        self, spec: str, kind: str, origin: str = "config", *, added_at: datetime | None = None
    ) -> int:
        """The id of a source, adding it if new (an existing one keeps its state).

        `added_at` (default: now) is when watching it began: posts published more than a day
        before it are stored without alerts (see `SourceFeed`)."""
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO sources (spec, kind, added_at, origin) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (spec) DO NOTHING RETURNING id",
                (spec, kind, added_at or engine.now_utc(), origin),
            )
            row = await cursor.fetchone()
            if row is None:  # a statement of its own: it sees a row another worker added
                cursor = await conn.execute("SELECT id FROM sources WHERE spec = %s", (spec,))
                row = await cursor.fetchone()
        assert row is not None
        return int(row["id"])

    async def add_source(self, spec: str, kind: str, origin: str) -> bool:
        """Watch a source (again); False when it was already watched."""
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "SELECT id, enabled FROM sources WHERE lower(spec) = lower(%s)"
                " ORDER BY id LIMIT 1 FOR UPDATE",
                (spec,),
            )
            row = await cursor.fetchone()
            if row is None:
                cursor = await conn.execute(
                    "INSERT INTO sources (spec, kind, added_at, origin) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT (spec) DO NOTHING",
                    (spec, kind, engine.now_utc(), origin),
                )
                return cursor.rowcount > 0  # 0: another worker added it meanwhile
            if row["enabled"]:
                return False
            # Watched anew from now: what it published while it was not watched and is
            # older than a day is stored without alerts, like a new source's back catalogue.
            await conn.execute(
                "UPDATE sources SET enabled = true, failures = 0, stopped_at = NULL,"
                " failing_since = NULL, added_at = %s, origin = %s WHERE id = %s",
                (engine.now_utc(), origin, row["id"]),
            )
            return True

    async def remove_source(self, spec: str) -> bool:
        """Stop watching a source; its posts and cursor stay. False if it was not watched."""
        changed = await self._run(
            "UPDATE sources SET enabled = false WHERE lower(spec) = lower(%s) AND enabled",
            (spec,),
        )
        return changed > 0

    async def list_sources(self, *, enabled_only: bool = True) -> list[SourceInfo]:
        """Every watched source with its health and what it brought in the last 24 hours."""
        rows = await self._all(
            _LIST_SOURCES,
            {
                "since": engine.now_utc() - timedelta(hours=24),
                "rhythm": RHYTHM_POSTS + 1,
                "enabled_only": enabled_only,
            },
        )
        return [_source_info(row) for row in rows]

    async def get_cursor(self, source_id: int) -> str | None:
        row = await self._one("SELECT cursor FROM sources WHERE id = %s", (source_id,))
        return None if row is None else row["cursor"]

    async def source_added_at(self, source_id: int) -> datetime | None:
        """When watching the source began (None for an unknown id)."""
        row = await self._one("SELECT added_at FROM sources WHERE id = %s", (source_id,))
        return None if row is None else row["added_at"]

    async def set_cursor(self, source_id: int, cursor: str) -> None:
        """Move the cursor; the source's health is untouched (a read may still fail)."""
        await self._run(_SET_CURSOR, (cursor, source_id))

    async def record_source_ok(self, source_id: int) -> None:
        """A read completed without error: the source is healthy (no longer failing or
        stopped); the cursor is unchanged."""
        await self._run(
            "UPDATE sources SET last_ok_at = %s, failures = 0, failing_since = NULL,"
            " stopped_at = NULL WHERE id = %s",
            (engine.now_utc(), source_id),
        )

    async def record_source_error(
        self, source_id: int, error: str, *, stopped: bool = False
    ) -> None:
        """A read failed. `stopped`: with a problem a retry will not fix soon (SourceStopped);
        the source counts as stopped from the first such failure until a read succeeds."""
        await self._run(
            "UPDATE sources SET last_error = %(error)s, last_error_at = %(now)s,"
            " failures = failures + 1, failing_since = COALESCE(failing_since, %(now)s),"
            " stopped_at = CASE WHEN %(stopped)s THEN COALESCE(stopped_at, %(now)s)"
            " ELSE stopped_at END WHERE id = %(id)s",
            {
                "error": self._redact(error)[:500],
                "now": engine.now_utc(),
                "stopped": stopped,
                "id": source_id,
            },
        )

    # --- posts and matches ---------------------------------------------------------------

    async def get_post(self, source: str, channel: str, post_id: str) -> StoredPost | None:
        row = await self._one(
            "SELECT * FROM posts WHERE source = %s AND channel = %s AND post_id = %s",
            (source, channel, post_id),
        )
        return None if row is None else stored_post(row)

    async def posts_by_ids(self, ids: Sequence[int]) -> list[StoredPost]:
        """The stored posts of these ids, in the order given (ids not found are skipped)."""
        if not ids:
            return []
        rows = await self._all("SELECT * FROM posts WHERE id = ANY(%s::bigint[])", (list(ids),))
        found = {int(row["id"]): stored_post(row) for row in rows}
        return [found[post_id] for post_id in ids if post_id in found]

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
        subscribers who had no match on this post before get an alert for it."""
        records = list(matches)
        date = post.date.astimezone(UTC)  # a naive date is local time, as in SQLite
        # Written out before the transaction, and a long list on a thread: the event loop
        # (and the sender's pacer on it) is not held for the milliseconds it takes.
        prepared = None
        if len(records) >= PREPARE_ON_THREAD:
            prepared = await asyncio.to_thread(_prepared, records)
        elif records:
            prepared = _prepared(records)
        async with self._transaction() as conn:
            now = await _stamp(conn, matches_written=bool(records))
            post_id, created, changed = await _upsert_post(conn, post, date, source_id, now)
            queued = 0
            if changed and prepared is not None:
                queued = await _record_matches(
                    conn, post_id, records, prepared, now, edit=not created
                )
            # The source's latest name, for /sources (a channel may rename itself).
            title = post.channel_title or None
            if source_id is not None and (cursor is not None or title is not None):
                await conn.execute(
                    "UPDATE sources SET cursor = COALESCE(%s, cursor),"
                    " title = COALESCE(%s, title) WHERE id = %s",
                    (cursor, title, source_id),
                )
        return SaveResult(post_id, created, changed, queued)

    async def mark_deleted(self, source: str, channel: str, post_id: str) -> bool:
        """The channel deleted a post: keep it, marked deleted. False if we never had it."""
        changed = await self._run(
            "UPDATE posts SET deleted = true, deleted_at = %s WHERE source = %s"
            " AND channel = %s AND post_id = %s AND NOT deleted",
            (engine.now_utc(), source, channel, post_id),
        )
        return changed > 0

    async def search_posts(self, words: Sequence[str], limit: int = 20) -> list[StoredPost]:
        """Newest posts containing every word (the `posts_search` index of migration 0003:
        each word is a phrase of the words it holds, as FTS5 reads a quoted word; words are
        parameters, never query syntax)."""
        terms = [word for word in words if word.strip()]
        if not terms:
            return []
        query = sql.SQL(
            "SELECT * FROM posts WHERE dozor_search_vector(text) @@ ({})"
            " ORDER BY date DESC, id DESC LIMIT {}"
        ).format(
            sql.SQL(" && ").join([_SEARCH_WORD.format(sql.Placeholder())] * len(terms)),
            sql.Placeholder(),
        )
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query, (*terms, limit))
            rows = await cursor.fetchall()
        return [stored_post(row) for row in rows]

    async def recent_posts(self, limit: int, offset: int = 0) -> list[StoredPost]:
        """The newest posts, newest first, skipping `offset`."""
        rows = await self._all(
            "SELECT * FROM posts ORDER BY date DESC, id DESC LIMIT %s OFFSET %s", (limit, offset)
        )
        return [stored_post(row) for row in rows]

    async def count_posts(self) -> int:
        row = await self._one("SELECT COUNT(*) AS n FROM posts")
        return 0 if row is None else int(row["n"])


async def _stamp(conn: Connection, *, matches_written: bool) -> datetime:
    """The moment a save is stamped with (its post's times and its matches'), from the
    server's clock as `write_barrier` reads it, so that workers' clocks do not matter.

    A save that writes matches takes its lock on `matches` first and holds it until commit:
    `write_barrier` (SHARE mode, then the time) waits for a save that stamped before it, and
    a save that had not stamped yet waits for the barrier, so it stamps after it."""
    lock = "LOCK TABLE matches IN ROW EXCLUSIVE MODE; " if matches_written else ""
    # One round trip: with no parameters, both statements go in one simple query.
    cursor = await conn.execute(f"{lock}SELECT clock_timestamp() AS now")
    if matches_written:
        cursor.nextset()
    row = await cursor.fetchone()
    assert row is not None
    now: datetime = row["now"]
    return now


async def _upsert_post(
    conn: Connection, post: Post, date: datetime, source_id: int | None, now: datetime
) -> tuple[int, bool, bool]:
    """Insert the post, or update the stored one: its id, whether it is new, whether its
    text changed (a new post's has)."""
    params = {
        "source": post.source,
        "channel": post.channel,
        "post_id": post.post_id,
        "date": date,
        "text": post.text,
        "url": post.url,
        "edited": post.edited,
        "forwarded_from": post.forwarded_from,
        "views": post.views,
        "media_count": post.media_count,
        "source_id": source_id,
        "now": now,
        "channel_title": post.channel_title,
    }
    while True:
        cursor = await conn.execute(_INSERT_POST, params)
        row = await cursor.fetchone()
        if row is not None:
            return int(row["id"]), True, True
        cursor = await conn.execute(_UPDATE_POST, params)
        row = await cursor.fetchone()
        if row is not None:
            return int(row["id"]), False, bool(row["changed"])
        # Deleted by retention between the two statements: insert it afresh.


def _prepared(matches: list[MatchRecord]) -> dict[str, Any]:
    """The parameters of `_RECORD_PREPARED` but the post and the time: the matches as
    array literals, the alerts as ingest prepared them."""
    alerted, alerts = _prepared_alerts(matches)
    return {
        "subscriptions": _array(match.subscription_id for match in matches),
        "chats": _array(match.chat_id for match in matches),
        "queries": _text_array(match.query for match in matches),
        "digest_only": _array("t" if match.digest_only else "f" for match in matches),
        "digest": MODE_DIGEST,
        "alerted": _array(alerted),
        "alerts": alerts,
        "count": len(alerted),
    }


async def _record_matches(
    conn: Connection,
    post_id: int,
    matches: list[MatchRecord],
    prepared: dict[str, Any],
    now: datetime,
    *,
    edit: bool,
) -> int:
    """Write a post's matches and its alerts; how many alerts were queued."""
    if not edit:
        cursor = await conn.execute(_RECORD_PREPARED, {**prepared, "post": post_id, "now": now})
        row = await cursor.fetchone()
        if row is not None and row["whole"]:
            return int(prepared["count"])
    span_of: list[int] = []
    starts: list[int] = []
    stops: list[int] = []
    for ordinal, match in enumerate(matches, start=1):  # WITH ORDINALITY counts from 1
        for span in match.spans:
            span_of.append(ordinal)
            starts.append(span.start)
            stops.append(span.end)
    cursor = await conn.execute(
        _RECORD_MATCHES,
        {
            "subscriptions": prepared["subscriptions"],  # as literals, built once
            "queries": prepared["queries"],
            "digest": MODE_DIGEST,
            "post": post_id,
            "now": now,
            "edit": edit,
            "span_of": span_of,
            "starts": starts,
            "stops": stops,
        },
    )
    row = await cursor.fetchone()
    return 0 if row is None else int(row["queued"])


def _prepared_alerts(matches: list[MatchRecord]) -> tuple[list[int], str]:
    """The chats a post alerts, by chat id, and their alerts as `fresh_alerts` holds them
    (JSON): each chat's queries in the order matched, and the set of their spans, in order.

    A post's matches share their spans by query (one tuple for all the subscribers of a
    query): each tuple is put in order once."""
    by_chat: dict[int, list[MatchRecord]] = {}
    for match in matches:
        if not match.digest_only:
            by_chat.setdefault(match.chat_id, []).append(match)
    ordered: dict[int, list[tuple[int, int]]] = {}  # by id(spans): they outlive this call
    alerts: list[dict[str, object]] = []
    alerted = sorted(by_chat)
    for chat in alerted:
        records = by_chat[chat]
        if len(records) == 1:
            spans = ordered.get(id(records[0].spans))
            if spans is None:
                spans = ordered[id(records[0].spans)] = _in_order(records[0].spans)
        else:
            spans = _in_order([span for record in records for span in record.spans])
        alerts.append(
            {"chat_id": chat, "queries": [record.query for record in records], "spans": spans}
        )
    return alerted, json.dumps(alerts, ensure_ascii=False)


def _array(values: Iterable[int | str]) -> str:
    """A PostgreSQL array literal of numbers or booleans ('t'/'f'), for a parameter cast to
    its array type: a long list written out in C, not element by element by psycopg."""
    return "{" + ",".join(map(str, values)) + "}"


def _text_array(values: Iterable[str]) -> str:
    """A PostgreSQL array literal of strings (each quoted, its quotes and backslashes
    escaped), for a parameter cast to text[]."""
    return "{" + ",".join(_quoted(value) for value in values) + "}"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _in_order(spans: Iterable[Span]) -> list[tuple[int, int]]:
    return sorted({(span.start, span.end) for span in spans})


def _source_info(row: Row) -> SourceInfo:
    # Too few posts to tell the source's rhythm: no usual gap.
    gap = row["usual_gap"] if int(row["rhythm_posts"]) > RHYTHM_MIN_POSTS else None
    return SourceInfo(
        id=int(row["id"]),
        spec=row["spec"],
        kind=row["kind"],
        enabled=bool(row["enabled"]),
        origin=row["origin"],
        added_at=row["added_at"],
        last_post_at=row["last_post"],
        last_ok_at=row["last_ok_at"],
        last_error=row["last_error"],
        last_error_at=row["last_error_at"],
        failures=int(row["failures"]),
        posts_24h=int(row["posts_24h"]),
        usual_gap=gap,
        title=row["title"],
        stopped_at=row["stopped_at"],
        failing_since=row["failing_since"],
    )
