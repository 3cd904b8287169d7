"""PostgreSQL: subscribers (a part of `PostgresStorage`)."""

from __future__ import annotations

from datetime import UTC, datetime

from psycopg import sql

from bot.domain import MODE_BOTH, MODES, Subscriber, Subscription
from bot.storage.postgres.engine import (
    Connection,
    PostgresBase,
    Row,
    now_utc,
    subscriber,
    subscription,
)
from bot.storage.records import TooManySubscriptions


class Subscribers(PostgresBase):
    """Chats, their settings and their saved queries."""

    async def upsert_subscriber(
        self, chat_id: int, name: str, *, kind: str = "private", tg_language: str | None = None
    ) -> Subscriber:
        """Create a subscriber, or reactivate one who had blocked the bot; `tg_language` (the
        Telegram language_code of whoever wrote) is remembered when given."""
        row = await self._one(
            "INSERT INTO subscribers (chat_id, name, active, created_at, kind, tg_language)"
            " VALUES (%s, %s, true, %s, %s, %s)"
            " ON CONFLICT (chat_id) DO UPDATE SET name = excluded.name, active = true,"
            " blocked_at = NULL, kind = excluded.kind,"
            " tg_language = COALESCE(excluded.tg_language, subscribers.tg_language)"
            " RETURNING *",
            (chat_id, name[:200], now_utc(), kind, tg_language),
        )
        assert row is not None
        return subscriber(row)

    async def get_subscriber(self, chat_id: int) -> Subscriber | None:
        row = await self._one("SELECT * FROM subscribers WHERE chat_id = %s", (chat_id,))
        return None if row is None else subscriber(row)

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
        chat's row is locked while counting, so concurrent commands (in any worker) cannot
        overshoot it."""
        async with self._transaction() as conn:
            if limit is not None:
                # NO KEY UPDATE: serialises adds to this chat, yet lets foreign-key checks of
                # other writes (which take KEY SHARE) through.
                await conn.execute(
                    "SELECT 1 FROM subscribers WHERE chat_id = %s FOR NO KEY UPDATE", (chat_id,)
                )
                cursor = await conn.execute(
                    "SELECT COUNT(*) AS n, bool_or(query = %s) AS duplicate FROM subscriptions"
                    " WHERE chat_id = %s",
                    (query, chat_id),
                )
                counted = await cursor.fetchone()
                assert counted is not None
                if int(counted["n"]) >= limit:
                    if counted["duplicate"]:
                        return None
                    raise TooManySubscriptions(int(counted["n"]))
            cursor = await conn.execute(
                "INSERT INTO subscriptions (chat_id, query, created_at, mode, preset)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (chat_id, query) DO NOTHING"
                " RETURNING *",
                (chat_id, query, now_utc(), mode, preset),
            )
            row = await cursor.fetchone()
        return None if row is None else subscription(row)

    async def subscriptions_of(self, chat_id: int) -> list[Subscription]:
        rows = await self._all(
            "SELECT * FROM subscriptions WHERE chat_id = %s ORDER BY id", (chat_id,)
        )
        return [subscription(row) for row in rows]

    async def note_language(self, chat_id: int, tg_language: str) -> None:
        """Remember the Telegram language_code of a chat that exists (no row is created)."""
        await self._run(
            "UPDATE subscribers SET tg_language = %s WHERE chat_id = %s"
            " AND tg_language IS DISTINCT FROM %s",
            (tg_language[:16], chat_id, tg_language[:16]),
        )

    async def update_subscriber(self, chat_id: int, **settings: object) -> Subscriber | None:
        """Change some of a chat's settings (names as in `Subscriber`); None if no such chat."""
        unknown = set(settings) - _SETTABLE
        if unknown:
            raise ValueError(f"not a setting: {', '.join(sorted(unknown))}")
        if not settings:
            return await self.get_subscriber(chat_id)
        assignments: list[sql.Composable] = [
            sql.SQL("{} = %s").format(sql.Identifier(name)) for name in settings
        ]
        if _DIGEST_SCHEDULE & set(settings):
            # Worked out again at the next digest job (SQLite stores '' for this).
            assignments.append(sql.SQL("next_digest_at = NULL"))
        statement = sql.SQL("UPDATE subscribers SET {} WHERE chat_id = %s RETURNING *").format(
            sql.SQL(", ").join(assignments)
        )
        async with self._transaction() as conn:
            cursor = await conn.execute(statement, (*settings.values(), chat_id))
            row = await cursor.fetchone()
        return None if row is None else subscriber(row)

    async def active_subscribers(self) -> list[Subscriber]:
        rows = await self._all("SELECT * FROM subscribers WHERE active ORDER BY chat_id")
        return [subscriber(row) for row in rows]

    async def deactivate_subscriber(self, chat_id: int) -> None:
        """The chat blocked the bot: keep its data, send nothing until it writes /start."""
        await self._run(
            "UPDATE subscribers SET active = false, blocked_at = %s WHERE chat_id = %s",
            (now_utc(), chat_id),
        )

    async def remove_subscription(self, subscription_id: int) -> None:
        await self._run("DELETE FROM subscriptions WHERE id = %s", (subscription_id,))

    async def get_subscription(self, subscription_id: int) -> Subscription | None:
        row = await self._one("SELECT * FROM subscriptions WHERE id = %s", (subscription_id,))
        return None if row is None else subscription(row)

    async def update_subscription(
        self, subscription_id: int, *, mode: str | None = None, paused: bool | None = None
    ) -> Subscription | None:
        """Change a query's mode or pause it; None if it no longer exists."""
        if mode is not None and mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        # One statement: a value not given keeps the stored one.
        row = await self._one(
            "UPDATE subscriptions SET mode = COALESCE(%s, mode), paused = COALESCE(%s, paused)"
            " WHERE id = %s RETURNING *",
            (mode, paused, subscription_id),
        )
        return None if row is None else subscription(row)

    async def remove_preset(self, chat_id: int, preset: str) -> list[Subscription]:
        """Remove every query a chat got with a preset; returns them."""
        rows = await self._all(
            "WITH gone AS (DELETE FROM subscriptions WHERE chat_id = %s AND preset = %s"
            " RETURNING *) SELECT * FROM gone ORDER BY id",
            (chat_id, preset),
        )
        return [subscription(row) for row in rows]

    async def active_subscriptions(self) -> list[Subscription]:
        """Every subscription of subscribers who can receive alerts (what the index holds)."""
        rows = await self._all(
            "SELECT subscriptions.* FROM subscriptions JOIN subscribers USING (chat_id)"
            " WHERE subscribers.active AND NOT subscriptions.paused"
            " ORDER BY subscriptions.id"
        )
        return [subscription(row) for row in rows]

    async def service_counts(self, since: datetime) -> dict[str, int]:
        """What `/stats` shows: subscribers (and the active ones, not blocked), queries (and
        the paused ones), alerts sent since the UTC day of `since`, and messages waiting to
        be sent to active chats (what the sender still has to do)."""
        row = await self._one(
            "SELECT (SELECT COUNT(*) FROM subscribers) AS subscribers,"
            " (SELECT COUNT(*) FROM subscribers WHERE active) AS active,"
            " (SELECT COUNT(*) FROM subscriptions) AS queries,"
            " (SELECT COUNT(*) FROM subscriptions WHERE paused) AS paused,"
            " (SELECT SUM(alerts) FROM sent_daily WHERE day >= %s) AS alerts,"
            " (SELECT COUNT(*) FROM outbox JOIN subscribers USING (chat_id)"
            "  WHERE sent_at IS NULL AND failed_at IS NULL AND active)"
            " + (SELECT COUNT(*) FROM fresh_alerts CROSS JOIN unnest(chats) AS fresh (chat_id)"
            "  JOIN subscribers USING (chat_id) WHERE active) AS pending",
            (since.astimezone(UTC).date(),),
        )
        assert row is not None
        keys = ("subscribers", "active", "queries", "paused", "alerts", "pending")
        return {key: int(row[key] or 0) for key in keys}

    async def move_chat(self, old_id: int, new_id: int) -> bool:
        """A group became a supergroup, which Telegram gives a new id: move the chat's
        settings, queries, matches and unsent messages to `new_id` and forget `old_id`, in
        one transaction. A chat already known under the new id keeps what it has and takes
        only what it lacks (a query both have is kept once, with its matches joined; an
        alert both are waiting for goes once). False, changing nothing, when there is no
        chat under `old_id` (moved already, or never known).

        Locks are taken in one order (the matches table, outbox and fresh_alerts rows, the
        outbox's chat locks, subscriber rows), the order the other writers take theirs in,
        so that none waits for another in a circle."""
        if old_id == new_id or await self.get_subscriber(old_id) is None:
            return False
        async with self._transaction() as conn:
            # Saves wait (and those under way finish first): a save reads which chat has a
            # query when it writes the post's matches and alerts, and must not name the old
            # chat after it is gone. Moves take turns, so the second of two finds it gone.
            await conn.execute("LOCK TABLE matches IN SHARE ROW EXCLUSIVE MODE")
            cursor = await conn.execute("SELECT 1 FROM subscribers WHERE chat_id = %s", (old_id,))
            if await cursor.fetchone() is None:
                return False
            await conn.execute(
                _MOVE_OUTBOX,
                {
                    "old": old_id,
                    "new": new_id,
                    "now": now_utc(),
                    "why": f"the chat moved to {new_id}, which has this alert already",
                },
            )
            cursor = await conn.execute(
                "SELECT * FROM subscribers WHERE chat_id = %s FOR UPDATE", (old_id,)
            )
            old = await cursor.fetchone()
            assert old is not None  # only a move deletes a subscriber, and moves take turns
            await conn.execute(*_merge_subscriber(old, new_id))
            await _join_twin_queries(conn, old_id, new_id)
            await conn.execute(
                "UPDATE subscriptions SET chat_id = %s WHERE chat_id = %s", (new_id, old_id)
            )
            await conn.execute(
                "UPDATE matches SET chat_id = %s WHERE chat_id = %s", (new_id, old_id)
            )
            await conn.execute("DELETE FROM subscribers WHERE chat_id = %s", (old_id,))
        return True


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

# Whether the chat is active (and since when it is blocked) and when its next digest is due
# (worked out for its own zone and time) are a chat's own state: a chat already known under
# the new id keeps them; any other setting it lacks (NULL) it takes from the old chat.
_OWN = frozenset({"chat_id", "kind", "name", "created_at", "active", "blocked_at"})
_KEPT = _OWN | {"next_digest_at"}


def _merge_subscriber(old: Row, new_id: int) -> tuple[sql.Composed, list[object]]:
    """The statement (and its values) that gives `new_id` the old chat's row: a copy of
    every column (so settings added later move too), or, when the chat is known already
    (even if it appeared a moment ago in another worker), what it lacks."""
    columns = list(old.keys())
    values = [
        new_id if c == "chat_id" else "supergroup" if c == "kind" else old[c] for c in columns
    ]
    taken = [
        sql.SQL("{0} = COALESCE(subscribers.{0}, excluded.{0})").format(sql.Identifier(c))
        for c in columns
        if c not in _KEPT
    ]
    statement = sql.SQL(
        "INSERT INTO subscribers ({}) VALUES ({}) ON CONFLICT (chat_id) DO UPDATE SET"
        " kind = 'supergroup',"
        " name = CASE WHEN subscribers.name = '' THEN excluded.name ELSE subscribers.name END,"
        " created_at = LEAST(subscribers.created_at, excluded.created_at), {}"
    ).format(
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        sql.SQL(", ").join(sql.Placeholder() for _ in columns),
        sql.SQL(", ").join(taken),
    )
    return statement, values


async def _join_twin_queries(conn: Connection, old_id: int, new_id: int) -> None:
    """A query both chats have: the old one's matches join the new one's (one on a post the
    new chat's query matched too is a duplicate and goes), and the old query goes."""
    cursor = await conn.execute(
        "SELECT mine.id AS old_sub, theirs.id AS new_sub FROM subscriptions AS mine"
        " JOIN subscriptions AS theirs ON theirs.chat_id = %s AND theirs.query = mine.query"
        " WHERE mine.chat_id = %s",
        (new_id, old_id),
    )
    twins = await cursor.fetchall()
    if not twins:
        return
    old_subs = [int(t["old_sub"]) for t in twins]
    new_subs = [int(t["new_sub"]) for t in twins]
    await conn.execute(_JOIN_TWIN_MATCHES, (new_id, old_subs, new_subs))
    await conn.execute("DELETE FROM matches WHERE subscription_id = ANY(%s)", (old_subs,))
    await conn.execute("DELETE FROM subscriptions WHERE id = ANY(%s)", (old_subs,))


_JOIN_TWIN_MATCHES = (
    "UPDATE matches SET subscription_id = twin.new_sub, chat_id = %s"
    " FROM unnest(%s::bigint[], %s::bigint[]) AS twin (old_sub, new_sub)"
    " WHERE matches.subscription_id = twin.old_sub AND NOT EXISTS (SELECT 1 FROM matches AS"
    " theirs WHERE theirs.post_id = matches.post_id AND theirs.subscription_id = twin.new_sub)"
)
# The chat's messages in one statement, as the outbox's writers must (0002_outbox.sql): the
# rows it changes are locked first, the chats' queue locks at its end. Both chats' alerts not
# filed yet are filed, in post order (as the sender files them); unsent messages keep their
# ids, order and attempts. An alert the new chat has (in the outbox in any state, or about to
# be filed) is not sent twice: the old chat's copy is set aside, as its history. What was
# sent or set aside stays the old chat's history.
_MOVE_OUTBOX = """
WITH fresh AS (
    SELECT * FROM fresh_alerts_take(ARRAY[%(old)s, %(new)s]::bigint[], NULL)
), theirs AS (
    SELECT post_id FROM outbox WHERE kind = 'alert' AND chat_id = %(new)s
    UNION SELECT post_id FROM fresh WHERE chat_id = %(new)s
), moved AS (
    UPDATE outbox SET
        chat_id = CASE WHEN twin THEN outbox.chat_id ELSE %(new)s END,
        failed_at = CASE WHEN twin THEN %(now)s::timestamptz END,
        last_error = CASE WHEN twin THEN %(why)s ELSE outbox.last_error END
    FROM (
        SELECT id, kind = 'alert' AND post_id IN (SELECT post_id FROM theirs) AS twin
        FROM outbox WHERE chat_id = %(old)s AND sent_at IS NULL AND failed_at IS NULL
    ) AS waiting
    WHERE outbox.id = waiting.id
), filed AS (
    SELECT fresh.*, fresh.chat_id = %(old)s
        AND fresh.post_id IN (SELECT post_id FROM theirs) AS twin
    FROM fresh
)
INSERT INTO outbox (kind, chat_id, post_id, queries, spans, created_at, next_attempt_at,
    failed_at, last_error)
SELECT 'alert', CASE WHEN filed.twin THEN filed.chat_id ELSE %(new)s END, filed.post_id,
    filed.queries, filed.spans, filed.queued_at, %(now)s,
    CASE WHEN filed.twin THEN %(now)s::timestamptz END,
    CASE WHEN filed.twin THEN %(why)s END
FROM filed WHERE filed.queued_at IS NOT NULL
ORDER BY filed.post_id, filed.chat_id
ON CONFLICT DO NOTHING
"""
