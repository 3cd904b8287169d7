"""PostgreSQL: outbox (a part of `PostgresStorage`).

New alerts wait in `fresh_alerts` until the sender files them into the outbox, where each
chat has two queues (its alerts, its digests), each kept in order. `outbox_queues` (one row per
queue with something waiting: its oldest row and when it is due) is kept by the triggers of
migration 0002, whoever writes the outbox; that file says why a table and not an index.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from bot.domain import Span
from bot.storage.postgres.coordination import TELEGRAM_WORKER, WORKER
from bot.storage.postgres.engine import Connection, PostgresBase, Row, now_utc, stored_post
from bot.storage.records import (
    FILE_BATCH,
    KEEP_PER_SOURCE,
    PRUNE_BATCH,
    PendingMessage,
    Pruned,
)

ERROR_LENGTH = 500  # characters of an error kept with a row, as on SQLite


# Filing moves alerts out of `fresh_alerts` (`fresh_alerts_take`, migration 0006) and into
# the outbox in one statement: an alert is never in both, nor in neither. Alerts go in post
# order (ids follow the SELECT's order), so each chat's queue keeps its posts' order; an alert
# a chat has already is not filed twice. (The function's CTE is evaluated once, whole: it
# changes data. Its rows carry their post's time: this statement's snapshot may not show a
# post saved while it ran, whose alerts the function took.)
_FILE = """
WITH moved AS (
    SELECT * FROM fresh_alerts_take(%(chats)s::bigint[], %(n)s::integer)
), filed AS (
    INSERT INTO outbox (kind, chat_id, post_id, queries, spans, created_at, next_attempt_at,
        failed_at, last_error)
    SELECT 'alert', moved.chat_id, moved.post_id, moved.queries, moved.spans,
        moved.queued_at, %(now)s::timestamptz, %(failed_at)s::timestamptz,
        %(error)s::text
    FROM moved WHERE moved.queued_at IS NOT NULL  -- (NULL: the post is gone)
    ORDER BY moved.post_id, moved.chat_id
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT COUNT(*) FROM moved) AS moved, (SELECT COUNT(*) FROM filed) AS filed
"""

_WAITING = "sent_at IS NULL AND failed_at IS NULL"

# A chat's due queues, each read from its oldest row (`outbox_waiting`) and no further than
# `per_chat` rows: the cost follows what is returned, not how much waits. The rows are locked
# (SKIP LOCKED) and claimed for this worker (`me`, migration 0007) in the same statement. A
# queue is passed over while another live worker (its lock connection, by pid and name) has a
# claim among its next rows, or while its oldest row is locked by a sender choosing it this
# moment (what comes first then is not the queue's head): a chat's messages go in order, from
# one sender at a time.
_PENDING = f"""
WITH due AS (
    SELECT chat_id, kind, first_id FROM outbox_queues
    WHERE chat_id = ANY(%(chats)s::bigint[]) AND due_at <= %(now)s
), heads AS (
    SELECT waiting.*,
        ROW_NUMBER() OVER (PARTITION BY waiting.chat_id ORDER BY waiting.id) AS nth,
        bool_or(waiting.id = due.first_id) OVER queue AS whole,
        bool_or(CASE WHEN waiting.claimed_by IS NOT NULL
            AND waiting.claimed_by IS DISTINCT FROM %(me)s::integer THEN EXISTS (
                SELECT 1 FROM pg_stat_activity WHERE pid = waiting.claimed_by
                    AND application_name = ANY(%(workers)s::text[])) END) OVER queue
            AS elsewhere
    FROM due CROSS JOIN LATERAL (
        SELECT * FROM outbox
        WHERE outbox.chat_id = due.chat_id AND outbox.kind = due.kind AND {_WAITING}
        ORDER BY outbox.id LIMIT %(per_chat)s
        FOR UPDATE SKIP LOCKED
    ) AS waiting
    WINDOW queue AS (PARTITION BY waiting.chat_id, waiting.kind)
), chosen AS (
    SELECT * FROM heads
    WHERE heads.nth <= %(per_chat)s AND heads.whole AND NOT COALESCE(heads.elsewhere, false)
    ORDER BY heads.id LIMIT %(limit)s
), claimed AS (
    UPDATE outbox SET claimed_by = %(me)s::integer FROM chosen
    WHERE outbox.id = chosen.id AND %(me)s::integer IS NOT NULL
        AND outbox.claimed_by IS DISTINCT FROM %(me)s::integer
)
SELECT chosen.id, chosen.kind, chosen.chat_id, chosen.attempts, chosen.queries, chosen.spans,
    chosen.text, chosen.media, posts.id AS p_id, posts.source AS p_source,
    posts.channel AS p_channel, posts.post_id AS p_post_id, posts.date AS p_date,
    posts.text AS p_text, posts.url AS p_url, posts.edited AS p_edited,
    posts.deleted AS p_deleted, posts.forwarded_from AS p_forwarded_from,
    posts.views AS p_views, posts.media_count AS p_media_count,
    posts.channel_title AS p_channel_title
FROM chosen LEFT JOIN posts ON posts.id = chosen.post_id
ORDER BY chosen.id
"""

# Posts past retention, oldest first, locked: from here on no alert can be queued for them
# (a save queues alerts holding its post's row, inserted or locked FOR UPDATE), so what the
# next statement sees stays.
_PRUNABLE = f"""
SELECT id FROM posts
WHERE date < %(cutoff)s AND stored_at < %(cutoff)s AND updated_at < %(cutoff)s
    AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.post_id = posts.id AND {_WAITING})
    AND NOT EXISTS (SELECT 1 FROM fresh_alerts WHERE fresh_alerts.post_id = posts.id)
    AND (source_id IS NULL OR stored_at < (
        SELECT newer.stored_at FROM posts AS newer WHERE newer.source_id = posts.source_id
        ORDER BY newer.stored_at DESC LIMIT 1 OFFSET %(keep)s))
ORDER BY date LIMIT %(batch)s
FOR UPDATE
"""
# Asked again under the lock (a fresh snapshot): an alert queued by a writer that committed
# between the choice and the lock keeps its post. The matches are deleted here, not by the
# cascade, to be counted; the post's outbox rows are all finished.
_PRUNE_POSTS = f"""
WITH gone AS (
    DELETE FROM posts WHERE id = ANY(%(ids)s::bigint[])
        AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.post_id = posts.id AND {_WAITING})
        AND NOT EXISTS (SELECT 1 FROM fresh_alerts WHERE fresh_alerts.post_id = posts.id)
    RETURNING id
), matched AS (
    DELETE FROM matches WHERE post_id IN (SELECT id FROM gone) RETURNING 1
), finished AS (
    DELETE FROM outbox WHERE post_id IN (SELECT id FROM gone) RETURNING 1
)
SELECT (SELECT COUNT(*) FROM gone) AS posts, (SELECT COUNT(*) FROM matched) AS matches,
    (SELECT COUNT(*) FROM finished) AS messages
"""
# Finished rows, oldest first: the condition repeats `outbox_finished`'s so that it is read.
_FINISHED = (
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE {} IS NOT NULL"
    " AND (sent_at IS NOT NULL OR failed_at IS NOT NULL)"
    " AND COALESCE(sent_at, failed_at) < %s LIMIT %s)"
)
_OLD_DIGESTS = (
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE post_id IS NULL"
    " AND (sent_at IS NOT NULL OR failed_at IS NOT NULL)"
    " AND COALESCE(sent_at, failed_at) < %s ORDER BY id LIMIT %s)"
)


async def file_fresh_alerts(
    conn: Connection,
    now: datetime,
    *,
    chats: Collection[int] | None = None,
    batch: int | None = None,
    set_aside: tuple[datetime, str] | None = None,
) -> tuple[int, int]:
    """Move alerts from `fresh_alerts` into the outbox, due at `now`, in post order: the
    oldest `batch`, or every one for `chats`. `set_aside` (when, why) files them already set
    aside. Returns how many left `fresh_alerts` and how many outbox rows were made.

    For the parts that queue behind a chat's unfiled alerts (a digest, a chat's move): call
    it in their transaction, before their own outbox writes."""
    if chats is None and batch is None:
        raise ValueError("file_fresh_alerts needs chats or a batch")
    failed_at, error = set_aside if set_aside is not None else (None, None)
    cursor = await conn.execute(
        _FILE,
        {
            "chats": None if chats is None else sorted(chats),
            "n": batch,
            "now": now,
            "failed_at": failed_at,
            "error": error,
        },
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row["moved"]), int(row["filed"])


def _pending(row: Row) -> PendingMessage:
    return PendingMessage(
        id=int(row["id"]),
        kind=row["kind"],
        chat_id=int(row["chat_id"]),
        attempts=int(row["attempts"]),
        post=stored_post(row, "p_") if row["p_id"] is not None else None,
        queries=tuple(row["queries"]),
        spans=tuple(Span(start, end) for start, end in row["spans"]),
        text=row["text"],
        media=row["media"],
    )


def _ids(ids: int | Collection[int]) -> list[int]:
    return [ids] if isinstance(ids, int) else sorted(ids)


class Outbox(PostgresBase):
    """Filing alerts, choosing what the sender sends next, recording how each send went, and
    retention: old posts and finished rows."""

    def claim_as(self, worker: int | None) -> None:
        """Messages handed to this process's sender are claimed for `worker` (its session,
        `Coordination.worker`); None: nothing is claimed (a command run once)."""
        self._claimer = worker

    async def file_alerts(self, now: datetime | None = None, batch: int = FILE_BATCH) -> int:
        """Move the oldest `batch` alerts from `fresh_alerts` into the outbox, in post order;
        returns how many left `fresh_alerts` (0: nothing was waiting).

        Another worker filing at the same moment takes the same oldest rows: it waits for
        this one, finds them gone, and files nothing this turn."""
        async with self._transaction() as conn:
            moved, _ = await file_fresh_alerts(conn, now or now_utc(), batch=batch)
        return moved

    async def pending_chats(
        self, now: datetime, limit: int, *, skip_chats: Collection[int] = ()
    ) -> list[int]:
        """Active chats with something due now (not `skip_chats`), the longest-waiting first:
        read from `outbox_queues` in its queues' oldest-row order, so the cost follows
        `limit`, not how many messages wait."""
        rows = await self._all(
            "SELECT queues.chat_id FROM outbox_queues AS queues"
            " JOIN subscribers ON subscribers.chat_id = queues.chat_id"
            " WHERE queues.due_at <= %s AND subscribers.active"
            " AND NOT queues.chat_id = ANY(%s::bigint[])"
            " ORDER BY queues.first_id LIMIT %s",
            (now, sorted(skip_chats), limit * 2),  # a chat may be there twice (two queues)
        )
        return list(dict.fromkeys(int(row["chat_id"]) for row in rows))[:limit]

    async def pending_messages(
        self,
        now: datetime,
        limit: int = 100,
        *,
        chats: Collection[int] | None = None,
        per_chat: int | None = None,
    ) -> list[PendingMessage]:
        """Unsent, not set aside, due now, for active chats (only `chats`, when given, and
        at most `per_chat` of each); oldest first. Only queues due whole are included."""
        if chats is None:  # (the sender files alerts itself, and chooses the chats)
            await self.file_alerts(now)
            chats = await self.pending_chats(now, limit)
        if not chats:
            return []
        rows = await self._all(
            _PENDING,
            {
                "chats": sorted(chats),
                "now": now,
                "per_chat": per_chat or limit,
                "limit": limit,
                "me": self._claimer,
                "workers": [WORKER, TELEGRAM_WORKER],
            },
        )
        return [_pending(row) for row in rows]

    async def next_attempt_at(self) -> datetime | None:
        """When the next queue becomes due (None if nothing is pending); now when alerts wait
        to be filed (`pending_messages` files them)."""
        row = await self._one(
            "SELECT EXISTS (SELECT 1 FROM fresh_alerts) AS fresh,"
            " (SELECT queues.due_at FROM outbox_queues AS queues"
            "  JOIN subscribers ON subscribers.chat_id = queues.chat_id"
            "  WHERE subscribers.active ORDER BY queues.due_at LIMIT 1) AS due"
        )
        assert row is not None
        if row["fresh"]:
            return now_utc()
        due: datetime | None = row["due"]
        return due

    async def oldest_pending_at(self) -> datetime | None:
        """When the oldest message still waiting for an active chat was queued."""
        row = await self._one(
            "SELECT LEAST("
            " (SELECT MIN(outbox.created_at) FROM outbox"
            "  JOIN subscribers ON subscribers.chat_id = outbox.chat_id"
            "  WHERE outbox.sent_at IS NULL AND outbox.failed_at IS NULL AND subscribers.active),"
            " (SELECT posts.updated_at FROM posts WHERE posts.id ="
            "  (SELECT MIN(fresh.post_id) FROM fresh_alerts AS fresh WHERE EXISTS ("
            "   SELECT 1 FROM subscribers WHERE subscribers.chat_id = ANY(fresh.chats)"
            "   AND subscribers.active)))) AS oldest"
        )
        oldest: datetime | None = None if row is None else row["oldest"]
        return oldest

    async def hold_alerts(self, chat_id: int, until: datetime) -> int:
        """Postpone every alert waiting for a chat to `until` (it is muted or quiet), counting
        no attempt; returns how many were moved."""
        return await self._run(
            "UPDATE outbox SET next_attempt_at = %s, claimed_by = NULL WHERE chat_id = %s"
            f" AND kind = 'alert' AND {_WAITING} AND next_attempt_at < %s",
            (until, chat_id, until),
        )

    async def release_alerts(self, chat_id: int, now: datetime | None = None) -> int:
        """Make a chat's waiting alerts due now (its mute or quiet hours changed); returns
        how many were moved."""
        moment = now or now_utc()
        return await self._run(
            "UPDATE outbox SET next_attempt_at = %s WHERE chat_id = %s AND kind = 'alert'"
            f" AND {_WAITING} AND next_attempt_at > %s",
            (moment, chat_id, moment),
        )

    async def mark_sent(self, ids: int | Collection[int]) -> None:
        """Telegram accepted the message carrying these rows (counted for its UTC day in
        `sent_daily` by a trigger: the rows themselves are pruned soon after)."""
        await self._update_outbox("sent_at = %s", (now_utc(),), ids)

    async def postpone(self, ids: int | Collection[int], until: datetime, error: str) -> None:
        """A transient failure: try again at `until`."""
        await self._update_outbox(
            "next_attempt_at = %s, last_error = %s",
            (until, self._redact(error)[:ERROR_LENGTH]),
            ids,
        )

    async def set_aside(self, ids: int | Collection[int], reason: str) -> None:
        """A permanent failure (e.g. Telegram rejected the text): keep the rows, never retry."""
        await self._update_outbox(
            "failed_at = %s, last_error = %s",
            (now_utc(), self._redact(reason)[:ERROR_LENGTH]),
            ids,
        )

    async def _update_outbox(
        self, changes: str, params: Sequence[Any], ids: int | Collection[int]
    ) -> None:
        chosen = _ids(ids)
        if chosen:
            await self._run(
                f"UPDATE outbox SET {changes}, attempts = attempts + 1, claimed_by = NULL"
                " WHERE id = ANY(%s::bigint[])",
                (*params, chosen),
            )

    async def set_aside_chat(self, chat_id: int, reason: str) -> int:
        """Set aside everything still waiting for a chat (it blocked the bot), its alerts not
        filed yet included; how many."""
        now, error = now_utc(), self._redact(reason)[:ERROR_LENGTH]
        async with self._transaction() as conn:
            # The waiting rows first: their statement locks the chat's queue summary (its
            # triggers), and the alerts filed after it, set aside already, wait in no queue.
            cursor = await conn.execute(
                f"UPDATE outbox SET failed_at = %s, last_error = %s WHERE chat_id = %s"
                f" AND {_WAITING}",
                (now, error, chat_id),
            )
            waiting = max(cursor.rowcount, 0)
            _, filed = await file_fresh_alerts(conn, now, chats=[chat_id], set_aside=(now, error))
        return waiting + filed

    async def outbox_counts(self) -> dict[str, int]:
        """How many outbox rows are pending (alerts not filed yet included), sent and set
        aside."""
        row = await self._one(
            f"SELECT COUNT(*) FILTER (WHERE {_WAITING})"
            " + (SELECT COALESCE(SUM(cardinality(chats)), 0) FROM fresh_alerts) AS pending,"
            " COUNT(*) FILTER (WHERE sent_at IS NOT NULL) AS sent,"
            " COUNT(*) FILTER (WHERE failed_at IS NOT NULL) AS failed FROM outbox"
        )
        assert row is not None
        return {key: int(row[key]) for key in ("pending", "sent", "failed")}

    # --- retention -----------------------------------------------------------------------

    async def prune_finished(
        self, sent_before: datetime, failed_before: datetime, *, batch: int = PRUNE_BATCH * 10
    ) -> int:
        """Delete outbox rows sent before `sent_before` or set aside before `failed_before`,
        `batch` per transaction with a turn for the event loop between; returns how many.
        Rows still waiting are never touched."""
        sent = await self._delete_in_batches(_FINISHED.format("sent_at"), sent_before, batch)
        failed = await self._delete_in_batches(_FINISHED.format("failed_at"), failed_before, batch)
        return sent + failed

    async def _delete_in_batches(
        self,
        statement: str,
        before: datetime,
        batch: int,
        stop: Callable[[], bool] | None = None,
    ) -> int:
        """Run `statement` (a DELETE taking `before` and a LIMIT), a transaction each time,
        until it deletes fewer than `batch`; `stop`, asked before each, ends it early."""
        total = 0
        while stop is None or not stop():
            deleted = await self._run(statement, (before, batch))
            total += deleted
            if deleted < batch:
                break
            await asyncio.sleep(0)
        return total

    async def prune(
        self,
        before: datetime,
        *,
        batch: int = PRUNE_BATCH,
        stop: Callable[[], bool] | None = None,
    ) -> Pruned:
        """Delete what is older than `before`, `batch` posts (or digests) per transaction.

        A post goes once its date, its storing and its last edit all lie before `before`,
        with its matches and its finished alerts; one with a message still waiting (filed or
        not) stays, and so do each source's newest `KEEP_PER_SOURCE` posts. Digests sent or
        set aside before `before` go. `stop`, asked before each batch, ends the run early.
        """
        total = Pruned()
        while stop is None or not stop():
            chosen, done = await self._prune_posts(before, batch)
            total += done
            if chosen < batch:
                break
            await asyncio.sleep(0)
        digests = await self._delete_in_batches(_OLD_DIGESTS, before, batch, stop)
        return total + Pruned(messages=digests)

    async def _prune_posts(self, before: datetime, batch: int) -> tuple[int, Pruned]:
        """One transaction of `prune`: how many posts it chose, and what it deleted."""
        async with self._transaction() as conn:
            cursor = await conn.execute(
                _PRUNABLE,
                {"cutoff": before, "keep": KEEP_PER_SOURCE - 1, "batch": batch},
            )
            ids = [int(row["id"]) for row in await cursor.fetchall()]
            if not ids:
                return 0, Pruned()
            cursor = await conn.execute(_PRUNE_POSTS, {"ids": ids})
            row = await cursor.fetchone()
        assert row is not None
        return len(ids), Pruned(int(row["posts"]), int(row["matches"]), int(row["messages"]))
