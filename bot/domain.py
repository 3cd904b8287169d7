"""Frozen domain records passed between pipeline stages (no I/O, no library types)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Keep newlines and tabs; drop other control characters Telegram and SQLite choke on.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u2028\u2029\ufeff]")
MAX_POST_CHARS = 100_000
MAX_TITLE_CHARS = 200  # a channel's, feed's or account's name, as shown in alerts


def clean_text(text: str, *, limit: int = MAX_POST_CHARS) -> str:
    """Make untrusted text safe to store and send: valid UTF-8, no control chars, bounded."""
    # Lone surrogates (possible in JSON input) cannot be encoded; replace them.
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = _CONTROL_RE.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", text[:limit])


def clean_title(title: str | None) -> str | None:
    """A human name from a source (untrusted) as one bounded line; None when it is blank."""
    if title is None:
        return None
    line = " ".join(clean_text(title, limit=MAX_TITLE_CHARS * 4).split())
    return line[:MAX_TITLE_CHARS].rstrip() or None


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A configured source such as `jsonl:/path/posts.jsonl`: its kind and its target."""

    kind: str
    target: str

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.target}"

    @classmethod
    def parse(cls, spec: str) -> SourceSpec:
        kind, sep, target = spec.strip().partition(":")
        if not sep or not kind or not target.strip():
            raise ValueError(
                f"source spec {spec!r} is not KIND:TARGET, e.g. jsonl:/data/posts.jsonl"
            )
        return cls(kind.strip().lower(), target.strip())


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """A watched source and its health, as `/sources` shows it."""

    id: int
    spec: str
    kind: str
    enabled: bool
    origin: str
    added_at: datetime
    last_post_at: datetime | None
    last_ok_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    failures: int
    posts_24h: int
    # The longest gap between its recent posts (None until there are enough to tell): a
    # source silent for much longer than that is worth a look.
    usual_gap: timedelta | None = None
    title: str | None = None  # its human name, as its latest post carried it
    # Set while its last outcome was a problem a retry will not fix soon (SourceStopped).
    stopped_at: datetime | None = None
    failing_since: datetime | None = None  # the first failure of the current streak


@dataclass(frozen=True, slots=True)
class Post:
    """One post from a source; (source, channel, post_id) identifies it across reads and edits."""

    source: str
    channel: str
    post_id: str
    date: datetime
    text: str
    url: str | None = None
    edited: bool = False
    forwarded_from: str | None = None  # where a forwarded post came from (a name or link)
    views: int | None = None
    media_count: int = 0  # photos/videos in the post or album
    # The channel's human name (a Telegram title, a feed's title, an X display name).
    channel_title: str | None = None


@dataclass(frozen=True, slots=True)
class StoredPost:
    """A post as stored: its database id and what we learnt about it."""

    id: int
    post: Post
    deleted: bool = False


CHAT_KINDS = ("private", "group", "supergroup", "channel")


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A Telegram chat that talks to the bot, with its personal settings."""

    chat_id: int
    name: str
    active: bool
    created_at: datetime
    last_digest_at: datetime | None = None
    language: str | None = None  # chosen with /lang; None: follow tg_language
    tg_language: str | None = None  # Telegram's language_code, as last seen
    kind: str = "private"  # one of CHAT_KINDS
    timezone: str | None = None  # IANA name; None: the service's TIMEZONE
    digest_time: str | None = None  # local "HH:MM"; None: the service's DIGEST_TIME
    digest_enabled: bool = True
    muted_until: datetime | None = None  # alerts held until then, delivered after
    quiet_start: str | None = None  # local "HH:MM"; alerts held from here ...
    quiet_end: str | None = None  # ... to here, every day
    link_previews: bool = False
    introduced_at: datetime | None = None  # when the bot introduced itself in a group
    next_digest_at: datetime | None = None  # when the next digest is due; None: work it out
    digest_quiet_days: bool = False  # a digest saying "nothing matched" on quiet days
    digest_chart: bool = True  # the 14-day trend chart with the digest


# What a subscription sends: instant alerts and the digest, alerts only, or the digest only.
MODE_BOTH = "both"
MODE_INSTANT = "instant"
MODE_DIGEST = "digest"
MODES = (MODE_BOTH, MODE_INSTANT, MODE_DIGEST)


@dataclass(frozen=True, slots=True)
class Subscription:
    """A saved query of one subscriber."""

    id: int
    chat_id: int
    query: str
    created_at: datetime
    mode: str = MODE_BOTH  # one of MODES
    paused: bool = False  # a paused query matches nothing until resumed
    preset: str | None = None  # the preset it came with (removed together), if any


@dataclass(frozen=True, slots=True)
class Span:
    """Character range [start, end) of a matched word in a post's text."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Alert:
    """What one subscriber is told about one post: every query of theirs that matched."""

    outbox_id: int
    chat_id: int
    post: StoredPost
    queries: tuple[str, ...]
    spans: tuple[Span, ...] = field(default=())
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """One matched post inside a digest."""

    post: StoredPost
    queries: tuple[str, ...]
