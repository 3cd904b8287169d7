"""The `Storage` protocol: everything Dozor keeps, behind typed async methods.

Two engines implement it: `SqliteStorage` (one process, one file: the default) and, for
deployments that outgrow one process, PostgreSQL. Code outside `bot/storage/` depends on this
protocol only; SQL stays inside the package. `tests/contract/` runs one suite against both.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Protocol

from bot.domain import (
    MODE_BOTH,
    DigestEntry,
    Post,
    SourceInfo,
    StoredPost,
    Subscriber,
    Subscription,
)
from bot.storage.records import (
    FILE_BATCH,
    PRUNE_BATCH,
    MatchRecord,
    PendingMessage,
    Pruned,
    QueuedDigest,
    SaveResult,
    ZoneShift,
)


class Storage(Protocol):
    """What the service, the bot's handlers and the CLI need from a database."""

    async def close(self) -> None: ...

    async def check_writable(self) -> None:
        """Raise if the database cannot be written now (read-only, disk full); writes nothing."""

    async def ensure_source(
        self, spec: str, kind: str, origin: str = "config", *, added_at: datetime | None = None
    ) -> int:
        """The id of a source, adding it if new (an existing one keeps its state)."""

    async def add_source(self, spec: str, kind: str, origin: str) -> bool:
        """Watch a source (again); False when it was already watched."""

    async def remove_source(self, spec: str) -> bool:
        """Stop watching a source; its posts and cursor stay. False if it was not watched."""

    async def list_sources(self, *, enabled_only: bool = True) -> list[SourceInfo]:
        """Every watched source with its health and what it brought in the last 24 hours."""

    async def get_cursor(self, source_id: int) -> str | None: ...

    async def source_added_at(self, source_id: int) -> datetime | None:
        """When watching the source began (None for an unknown id)."""

    async def set_cursor(self, source_id: int, cursor: str) -> None:
        """Move the cursor; the source's health is untouched (a read may still fail)."""

    async def record_source_ok(self, source_id: int) -> None:
        """A read completed without error: the source is healthy (no longer failing or
        stopped); the cursor is unchanged.
        """

    async def record_source_error(
        self, source_id: int, error: str, *, stopped: bool = False
    ) -> None:
        """A read failed. `stopped`: with a problem a retry will not fix soon (SourceStopped);
        the source counts as stopped from the first such failure until a read succeeds.
        """

    async def get_post(self, source: str, channel: str, post_id: str) -> StoredPost | None: ...

    async def save_post(
        self,
        post: Post,
        matches: Iterable[MatchRecord],
        *,
        source_id: int | None = None,
        cursor: str | None = None,
    ) -> SaveResult:
        """Store a post, its matches, its alerts and the source cursor in one transaction."""

    async def mark_deleted(self, source: str, channel: str, post_id: str) -> bool:
        """The channel deleted a post: keep it, marked deleted. False if we never had it."""

    async def search_posts(self, words: Sequence[str], limit: int = 20) -> list[StoredPost]:
        """Newest posts containing every word (FTS5; words are quoted, never raw syntax)."""

    async def recent_posts(self, limit: int, offset: int = 0) -> list[StoredPost]:
        """The newest posts, newest first, skipping `offset`."""

    async def count_posts(self) -> int: ...

    async def count_candidates(self, fts: str) -> int:
        """How many posts the FTS5 expression `fts` admits (built by `matching.candidates`,
        which quotes every term: never user text).
        """

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
        """

    async def posts_by_ids(self, ids: Sequence[int]) -> list[StoredPost]:
        """The stored posts of these ids, in the order given (ids not found are skipped)."""

    async def upsert_subscriber(
        self, chat_id: int, name: str, *, kind: str = "private", tg_language: str | None = None
    ) -> Subscriber:
        """Create a subscriber, or reactivate one who had blocked the bot; `tg_language` (the
        Telegram language_code of whoever wrote) is remembered when given.
        """

    async def note_language(self, chat_id: int, tg_language: str) -> None:
        """Remember the Telegram language_code of a chat that exists (no row is created)."""

    async def update_subscriber(self, chat_id: int, **settings: object) -> Subscriber | None:
        """Change some of a chat's settings (names as in `Subscriber`); None if no such chat."""

    async def get_subscriber(self, chat_id: int) -> Subscriber | None: ...

    async def active_subscribers(self) -> list[Subscriber]: ...

    async def deactivate_subscriber(self, chat_id: int) -> None:
        """The chat blocked the bot: keep its data, send nothing until it writes /start."""

    async def move_chat(self, old_id: int, new_id: int) -> bool:
        """A group became a supergroup, which Telegram gives a new id: move the chat's
        settings, queries, matches and unsent messages to `new_id` and forget `old_id`, in
        one transaction. A chat already known under the new id keeps what it has and takes
        only what it lacks (a query both have is kept once, with its matches joined; an
        alert both are waiting for goes once). False, changing nothing, when there is no
        chat under `old_id` (moved already, or never known).
        """

    async def add_subscription(
        self,
        chat_id: int,
        query: str,
        *,
        limit: int | None = None,
        mode: str = MODE_BOTH,
        preset: str | None = None,
    ) -> Subscription | None:
        """Save a query for a chat; None when the chat already has exactly this query."""

    async def remove_subscription(self, subscription_id: int) -> None: ...

    async def get_subscription(self, subscription_id: int) -> Subscription | None: ...

    async def update_subscription(
        self, subscription_id: int, *, mode: str | None = None, paused: bool | None = None
    ) -> Subscription | None:
        """Change a query's mode or pause it; None if it no longer exists."""

    async def remove_preset(self, chat_id: int, preset: str) -> list[Subscription]:
        """Remove every query a chat got with a preset; returns them."""

    async def subscriptions_of(self, chat_id: int) -> list[Subscription]: ...

    async def active_subscriptions(self) -> list[Subscription]:
        """Every subscription of subscribers who can receive alerts (what the index holds)."""

    async def service_counts(self, since: datetime) -> dict[str, int]:
        """What `/stats` shows: subscribers (and the active ones, not blocked), queries (and
        the paused ones), alerts sent since the UTC day of `since`, and messages waiting to
        be sent to active chats (what the sender still has to do).
        """

    async def oldest_pending_at(self) -> datetime | None:
        """When the oldest message still waiting for an active chat was queued."""

    async def pending_chats(
        self, now: datetime, limit: int, *, skip_chats: Collection[int] = ()
    ) -> list[int]:
        """Active chats with something due now (not `skip_chats`), the longest-waiting first."""

    def claim_as(self, worker: int | None) -> None:
        """Messages `pending_messages` hands out are claimed for `worker`
        (`Coordination.worker`): other senders pass them over while it lives. None: nothing
        is claimed (SQLite, where one process sends, ignores claims)."""

    async def file_alerts(self, now: datetime | None = None, batch: int = FILE_BATCH) -> int:
        """Move the oldest `batch` alerts from `fresh_alerts` (where ingest writes them,
        clustered by post) into the outbox (rows with delivery state, in their chats'
        queues), in post order, so each chat's alerts stay in order; an alert for a chat
        that has since blocked the bot is filed too, as its other waiting messages stay.
        Returns how many rows left `fresh_alerts` (0: nothing was waiting).
        """

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
        due whole are included, as `pending_chats` chooses them.
        """

    async def next_attempt_at(self) -> datetime | None:
        """When the next queue becomes due (None if nothing is pending): a queue waits for
        its latest postponed message, as in `pending_chats`, so a new alert behind held ones
        does not look due.
        """

    async def hold_alerts(self, chat_id: int, until: datetime) -> int:
        """Postpone every alert waiting for a chat to `until` (it is muted or quiet), counting
        no attempt; returns how many were moved.
        """

    async def release_alerts(self, chat_id: int, now: datetime | None = None) -> int:
        """Make a chat's waiting alerts due now (its mute or quiet hours changed): the outbox
        decides afresh whether they go or wait. Returns how many were moved.
        """

    async def mark_sent(self, ids: int | Collection[int]) -> None:
        """Telegram accepted the message carrying these rows (counted for its UTC day in
        `sent_daily` by a trigger: the rows themselves are pruned soon after).
        """

    async def prune_finished(
        self, sent_before: datetime, failed_before: datetime, *, batch: int = PRUNE_BATCH * 10
    ) -> int:
        """Delete outbox rows sent before `sent_before` or set aside before `failed_before`
        (those are kept longer, to be looked into), `batch` per transaction with a turn for
        the event loop between; returns how many. Rows still waiting are never touched.
        """

    async def postpone(self, ids: int | Collection[int], until: datetime, error: str) -> None:
        """A transient failure: try again at `until`."""

    async def set_aside(self, ids: int | Collection[int], reason: str) -> None:
        """A permanent failure (e.g. Telegram rejected the text): keep the rows, never retry."""

    async def set_aside_chat(self, chat_id: int, reason: str) -> int:
        """Set aside everything still waiting for a chat (it blocked the bot); how many."""

    async def outbox_counts(self) -> dict[str, int]:
        """How many outbox rows are pending, sent and set aside."""

    async def prune(
        self,
        before: datetime,
        *,
        batch: int = PRUNE_BATCH,
        stop: Callable[[], bool] | None = None,
    ) -> Pruned:
        """Delete what is older than `before`, `batch` posts (or digests) per transaction."""

    async def due_for_digest(
        self, now: datetime, limit: int, *, after: tuple[datetime | None, int] | None = None
    ) -> list[Subscriber]:
        """Active chats whose next digest is due by `now`, or not yet worked out (one range
        read of the `subscribers_next_digest` index), the longest-due first; `after` (the
        last chat's next digest time and id) reads the next page.
        """

    async def schedule_digests(self, schedule: Collection[tuple[int, datetime]]) -> None:
        """Store when each chat's next digest is due (chat id, moment)."""

    async def reschedule_all_digests(self) -> None:
        """Have every chat's next digest worked out again (at start: the service's digest
        time or zone may have changed since the due times were stored).
        """

    async def digest_entries(
        self, chat_id: int, since: datetime, until: datetime
    ) -> list[DigestEntry]:
        """Posts matched for a chat in (since, until], oldest first, with the queries matched."""

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
        is read once.
        """

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
        in [since, until).
        """

    async def write_barrier(self) -> datetime:
        """The time now, taken while no write is in progress (here or in another process):
        every match stamped before it is committed, every later one is stamped after it —
        the end of a digest's period, so that no match falls between two digests. The
        matches staged until then are merged (`merge_matches`) in the same transaction, so
        a read by chat up to this time sees them all.
        """

    async def merge_matches(self) -> int:
        """Move the staged matches (`staged_matches`: a post's matches, clustered by post)
        into `matches`, sorted by chat, in one transaction; how many moved. Every read of
        matches by chat calls it first (a quick look when nothing is staged).
        """

    async def query_order(self, chat_ids: Sequence[int]) -> dict[int, list[str]]:
        """Each chat's queries in the order it saved them."""

    async def queue_digest(self, chat_id: int, parts: Sequence[str], until: datetime) -> None:
        """Queue a digest's messages and move the chat's digest mark, in one transaction."""

    async def queue_digests(self, digests: Sequence[QueuedDigest]) -> None:
        """Queue many chats' digests (their messages, then the chart) and move each chat's
        digest mark and next due time, in one transaction.
        """

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
