"""PostgreSQL: digests (a part of `PostgresStorage`).

Reads by chat go straight to `matches` (there is no staging table to merge first), many chats
in one statement: the chats and their starts travel as arrays (`unnest`), not as a VALUES
list built per call. The end of a digest's period is `write_barrier`'s moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from bot.domain import DigestEntry, StoredPost, Subscriber
from bot.storage.postgres.engine import Connection, PostgresBase, stored_post, subscriber
from bot.storage.records import MEDIA_CHART, QueuedDigest, ZoneShift

_ROWS_PER_TURN = 100  # rows turned into objects before the event loop gets a turn

# The chats due, longest-due first: those never worked out (NULL, SQLite's '') before any
# moment, then by due time; keyset pages on (next_digest_at, chat_id). Each half is one range
# read of `subscribers_digest_due` (migration 0004).
_UNSCHEDULED = (
    "SELECT * FROM subscribers WHERE active AND next_digest_at IS NULL AND chat_id > %(last)s"
    " ORDER BY next_digest_at, chat_id LIMIT %(limit)s"  # by chat id, in the index's order
)
_SCHEDULED = (
    "SELECT * FROM subscribers WHERE active AND next_digest_at <= %(now)s"
    " AND (next_digest_at, chat_id) > (%(start)s, %(last)s)"
    " ORDER BY next_digest_at, chat_id LIMIT %(limit)s"
)
_DUE = (
    f"SELECT * FROM (({_UNSCHEDULED}) UNION ALL ({_SCHEDULED})) AS due"
    " ORDER BY next_digest_at NULLS FIRST, chat_id LIMIT %(limit)s"
)
_BEFORE_ALL = datetime(1, 1, 1, tzinfo=UTC)  # before any due time

_DIGEST_PAIRS = (
    "SELECT due.chat_id AS due_chat, matches.post_id AS post_id,"
    " array_agg(matches.query ORDER BY matches.subscription_id) AS queries"
    " FROM unnest(%s::bigint[], %s::timestamptz[]) AS due (chat_id, since)"
    " JOIN matches ON matches.chat_id = due.chat_id"
    " AND matches.created_at > due.since AND matches.created_at <= %s"
    " LEFT JOIN subscriptions ON subscriptions.id = matches.subscription_id"
    " WHERE COALESCE(subscriptions.mode, 'both') <> 'instant'"
    " GROUP BY due.chat_id, matches.post_id"
)

# A post counts on its local day: its UTC date shifted by the zone's offset before or after
# the zone's change (no change: NULL, so always the offset after, as SQLite's '').
_MENTION_COUNTS = (
    "SELECT due.chat_id AS chat_id, matches.query AS query,"
    " ((posts.date AT TIME ZONE 'UTC') + make_interval(mins => CASE"
    " WHEN posts.date < due.change THEN due.before ELSE due.after END))::date AS day,"
    " COUNT(DISTINCT posts.id) AS n"
    " FROM unnest(%s::bigint[], %s::integer[], %s::timestamptz[], %s::integer[])"
    " AS due (chat_id, before, change, after)"
    " JOIN matches ON matches.chat_id = due.chat_id"
    " AND matches.created_at >= %s AND matches.created_at < %s"
    " JOIN subscriptions ON subscriptions.chat_id = matches.chat_id"
    " AND subscriptions.query = matches.query{mode}"
    " JOIN posts ON posts.id = matches.post_id"
    " GROUP BY due.chat_id, matches.query, day"
)

# The chats' alerts not filed yet, then their digests, in one INSERT: the alerts take the
# lower ids, as they were queued before the digest (in post order, as the sender files them);
# each chat's digest messages, then its chart, in the order given. `fresh_alerts_take` makes
# the move atomic: a worker filing the same alerts at the same time waits for this one and
# then finds them gone, so none is filed twice. One outbox statement, so the queue
# summaries' trigger (migration 0002) takes the chats' locks once, in key order: filing first
# (`outbox.file_fresh_alerts`) and then queueing would take them in two rounds, and a filing
# of many chats at the same moment could then wait in a circle with this transaction.
_QUEUE = (
    "WITH moved AS (SELECT * FROM fresh_alerts_take(%(chats)s::bigint[], NULL))"
    " INSERT INTO outbox (kind, chat_id, post_id, queries, spans, text, media, created_at,"
    " next_attempt_at) SELECT kind, chat_id, post_id, queries, spans, text, media,"
    " created_at, next_attempt_at FROM ("
    " SELECT 0 AS part, moved.post_id AS first, moved.chat_id AS second, 'alert' AS kind,"
    " moved.chat_id, moved.post_id, moved.queries, moved.spans, NULL::text AS text,"
    " NULL::text AS media, moved.queued_at AS created_at, %(now)s AS next_attempt_at"
    " FROM moved WHERE moved.queued_at IS NOT NULL"
    " UNION ALL SELECT 1, message.n, 0, 'digest', message.chat_id, NULL, '[]', '[]',"
    " message.text, message.media, %(now)s, %(now)s"
    " FROM unnest(%(chat_ids)s::bigint[], %(texts)s::text[], %(media)s::text[])"
    " WITH ORDINALITY AS message (chat_id, text, media, n)"
    ") AS queued ORDER BY part, first, second ON CONFLICT DO NOTHING"
)
_MOVE_MARKS = (
    "UPDATE subscribers SET last_digest_at = mark.until,"
    " next_digest_at = COALESCE(mark.next_at, subscribers.next_digest_at)"
    " FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[])"
    " AS mark (chat_id, until, next_at) WHERE subscribers.chat_id = mark.chat_id"
)


class Digests(PostgresBase):
    """Who is due for a digest, what goes into it (posts, the chart's counts, the order of
    the chat's queries), and queueing it; /export's pages of matched posts."""

    async def due_for_digest(
        self, now: datetime, limit: int, *, after: tuple[datetime | None, int] | None = None
    ) -> list[Subscriber]:
        """Active chats whose next digest is due by `now`, or not yet worked out, the
        longest-due first (the unknown ones first, by chat id); `after` (the last chat's next
        digest time and id) reads the next page."""
        if after is not None and after[0] is not None:  # past the unknown ones
            params = {"now": now, "start": after[0], "last": after[1], "limit": limit}
            rows = await self._all(_SCHEDULED, params)
        else:
            last = -(2**63) if after is None else after[1]
            params = {"now": now, "start": _BEFORE_ALL, "last": last, "limit": limit}
            rows = await self._all(_DUE, params)
        return [subscriber(row) for row in rows]

    async def schedule_digests(self, schedule: Collection[tuple[int, datetime]]) -> None:
        """Store when each chat's next digest is due (chat id, moment)."""
        latest = dict(schedule)  # a chat named twice: its last moment, as SQLite's
        if not latest:
            return
        await self._run(
            "UPDATE subscribers SET next_digest_at = due.at"
            " FROM unnest(%s::bigint[], %s::timestamptz[]) AS due (chat_id, at)"
            " WHERE subscribers.chat_id = due.chat_id",
            (list(latest), list(latest.values())),
        )

    async def reschedule_all_digests(self) -> None:
        """Have every chat's next digest worked out again (at start: the service's digest
        time or zone may have changed since the due times were stored)."""
        await self._run("UPDATE subscribers SET next_digest_at = NULL WHERE active")

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
        posts = known if known is not None else {}
        if not since:
            return {}
        chats = sorted(since)
        rows = await self._all(_DIGEST_PAIRS, (chats, [since[c] for c in chats], until))
        pairs: list[tuple[int, int, tuple[str, ...]]] = []
        for number, row in enumerate(rows):
            if number % _ROWS_PER_TURN == _ROWS_PER_TURN - 1:
                await asyncio.sleep(0)  # thousands of rows: the event loop gets turns
            queries = tuple(dict.fromkeys(row["queries"]))
            pairs.append((int(row["due_chat"]), int(row["post_id"]), queries))
        missing = sorted({post_id for _, post_id, _ in pairs if post_id not in posts})
        posts.update(await self._posts_of(missing))
        entries: dict[int, list[DigestEntry]] = {}
        for chat_id, post_id, queries in pairs:
            stored = posts.get(post_id)
            if stored is not None:
                entries.setdefault(chat_id, []).append(DigestEntry(stored, queries))
        for chat_entries in entries.values():
            chat_entries.sort(key=lambda entry: (entry.post.post.date, entry.post.id))
        return entries

    async def _posts_of(self, ids: Sequence[int]) -> dict[int, StoredPost]:
        """The stored posts of these ids, by id (as `posts_by_ids`, which is another part's:
        read here so that this part stands on the base alone)."""
        if not ids:
            return {}
        rows = await self._all("SELECT * FROM posts WHERE id = ANY(%s)", (list(ids),))
        return {int(row["id"]): stored_post(row) for row in rows}

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
        if not shifts:
            return {}
        chats = sorted(shifts)
        columns = list(zip(*(shifts[chat] for chat in chats), strict=True))
        mode = " AND subscriptions.mode <> 'instant'" if digest_queries else ""
        rows = await self._all(
            _MENTION_COUNTS.format(mode=mode), (chats, *map(list, columns), since, until)
        )
        counts: dict[int, dict[str, dict[date, int]]] = {}
        for number, row in enumerate(rows):
            if number % _ROWS_PER_TURN == _ROWS_PER_TURN - 1:
                await asyncio.sleep(0)
            per_query = counts.setdefault(int(row["chat_id"]), {})
            per_query.setdefault(row["query"], {})[row["day"]] = int(row["n"])
        return counts

    async def write_barrier(self) -> datetime:
        """The time now, taken while no write to `matches` is in progress (in any worker):
        every match stamped before it is committed, every later one is stamped after it —
        the end of a digest's period, so that no match falls between two digests.

        Workers write `matches` concurrently, so a transaction that began before the barrier
        may commit after it. `LOCK TABLE matches IN SHARE MODE` waits for every transaction
        that holds ROW EXCLUSIVE on `matches` to end and holds new ones off until this one
        ends (a moment: readers are never held); the moment is read in between, from
        `clock_timestamp()` (now, not the transaction's start). It holds because `save_post`
        takes ROW EXCLUSIVE on `matches` before it takes the time it stamps its matches with:
        a save stamped before the moment has committed, one not yet stamped stamps after it.
        Both clocks must agree: `save_post` reads the worker's, this the server's (the same
        clock on one machine); stamping with the server's too would take workers' clocks
        out of it."""
        async with self._transaction() as conn:
            await conn.execute("LOCK TABLE matches IN SHARE MODE")
            cursor = await conn.execute("SELECT clock_timestamp() AS moment")
            row = await cursor.fetchone()
        assert row is not None
        moment: datetime = row["moment"]
        return moment

    async def merge_matches(self) -> int:
        """Nothing to merge: PostgreSQL writes matches straight into `matches` (SQLite stages
        them, a page-write optimisation of its B-trees). Kept for the Storage protocol; 0."""
        return 0

    async def query_order(self, chat_ids: Sequence[int]) -> dict[int, list[str]]:
        """Each chat's queries in the order it saved them."""
        order: dict[int, list[str]] = {}
        if not chat_ids:
            return order
        rows = await self._all(
            "SELECT chat_id, query FROM subscriptions WHERE chat_id = ANY(%s)"
            " ORDER BY chat_id, id",
            (sorted(set(chat_ids)),),
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
        now = datetime.now(UTC)
        rows = list(_digest_rows(digests))
        chats = sorted({d.chat_id for d in digests if d.parts or d.chart is not None})
        marks = {d.chat_id: d for d in digests}  # a chat named twice: its last, as SQLite's
        async with self._transaction() as conn:
            if chats:
                await conn.execute(
                    _QUEUE,
                    {
                        "chats": chats,
                        "now": now,
                        "chat_ids": [chat_id for chat_id, _, _ in rows],
                        "texts": [text for _, text, _ in rows],
                        "media": [media for _, _, media in rows],
                    },
                )
            await _move_marks(conn, marks.values())

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
        after = ""
        params: list[Any] = [chat_id, since]
        if before is not None:
            after = " AND (posts.date, posts.id) < (%s, %s)"
            params += [before[0], before[1]]
        rows = await self._all(
            "SELECT posts.*,"
            " array_agg(matches.query ORDER BY matches.subscription_id) AS matched_queries"
            " FROM matches JOIN posts ON posts.id = matches.post_id"
            f" WHERE matches.chat_id = %s AND matches.created_at >= %s{after}"
            " GROUP BY posts.id ORDER BY posts.date DESC, posts.id DESC LIMIT %s",
            (*params, limit),
        )
        return [
            DigestEntry(stored_post(row), tuple(dict.fromkeys(row["matched_queries"])))
            for row in rows
        ]


def _digest_rows(digests: Iterable[QueuedDigest]) -> Iterable[tuple[int, str, str | None]]:
    """The outbox rows of the digests, in order: each chat's messages, then its chart."""
    for digest in digests:
        for part in digest.parts:
            yield digest.chat_id, part, None
        if digest.chart is not None:
            yield digest.chat_id, digest.chart, MEDIA_CHART


async def _move_marks(conn: Connection, digests: Iterable[QueuedDigest]) -> None:
    """Each chat's digest mark, and its next due time when the digest says (else kept)."""
    chosen = list(digests)
    await conn.execute(
        _MOVE_MARKS,
        (
            [d.chat_id for d in chosen],
            [d.until for d in chosen],
            [d.next_at for d in chosen],
        ),
    )
