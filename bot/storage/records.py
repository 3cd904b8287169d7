"""What both storage engines hand to the rest of Dozor and take from it, besides the
domain objects: the records and limits every `Storage` implementation shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from importlib.resources.abc import Traversable

from bot.domain import Span, StoredPost


def migration_scripts(package: str) -> list[tuple[int, Traversable]]:
    """An engine's migrations (`bot.storage`, `bot.storage.postgres`) in the order they are
    applied, each with its version: the number its file name starts with."""
    folder = resources.files(package) / "migrations"
    scripts = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return [(int(script.name.split("_", 1)[0]), script) for script in scripts]


@dataclass(frozen=True, slots=True)
class MatchRecord:
    """A subscription that matched a post, as the ingest stage hands it to storage."""

    subscription_id: int
    chat_id: int
    query: str
    spans: tuple[Span, ...]
    # The query's mode was digest-only when matched: recorded, never alerted. A hint an
    # engine may check against the stored subscription and use to prepare the alerts.
    digest_only: bool = False


@dataclass(frozen=True, slots=True)
class SaveResult:
    """What saving a post did: its id, whether it was new or changed, and alerts queued."""

    post_id: int
    created: bool
    changed: bool
    alerts_queued: int


@dataclass(frozen=True, slots=True)
class PendingMessage:
    """An outbox row waiting to be sent: an alert (with its post) or a rendered digest."""

    id: int
    kind: str
    chat_id: int
    attempts: int
    post: StoredPost | None
    queries: tuple[str, ...]
    spans: tuple[Span, ...]
    text: str | None
    media: str | None = None  # MEDIA_CHART: `text` holds the chart's data, sent as a photo


# A zone's UTC offsets over a chart's days, in minutes: before, the moment they changed
# (None: they did not), after.
ZoneShift = tuple[int, datetime | None, int]
MEDIA_CHART = "chart"  # an outbox row whose text is a chart's data, sent as a photo


@dataclass(frozen=True, slots=True)
class QueuedDigest:
    """One chat's digest to queue: its messages, the chart's data (JSON) if any, the end of
    the period it covers (the chat's new digest mark) and when the next one is due."""

    chat_id: int
    parts: tuple[str, ...]
    until: datetime
    chart: str | None = None
    next_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Pruned:
    """What a retention run removed: posts, their matches, and finished outbox rows (the
    alerts of those posts and old digests)."""

    posts: int = 0
    matches: int = 0
    messages: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(
            self.posts + other.posts,
            self.matches + other.matches,
            self.messages + other.messages,
        )


class TooManySubscriptions(Exception):
    """The chat already has as many subscriptions as it may keep."""

    def __init__(self, count: int) -> None:
        super().__init__(f"the chat already has {count} subscriptions")
        self.count = count


RHYTHM_POSTS = 20  # a source's rhythm is judged by the gaps between its last posts
RHYTHM_MIN_POSTS = 5
FILE_BATCH = 500  # alerts moved from fresh_alerts into the outbox at a time (~30 ms of writing)
PRUNE_BATCH = 500  # posts per retention transaction: ingest waits for one batch at most
# Retention keeps each source's newest posts whatever their age: /sources tells a quiet
# source's last post and rhythm from them, and a preview page (about 20 posts) re-read for
# edits must find its posts stored, or they would come back as new and alert again.
KEEP_PER_SOURCE = RHYTHM_POSTS + 1
