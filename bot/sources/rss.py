"""`rss:URL` — RSS 0.9x/1.0/2.0 and Atom feeds, read with a conditional GET and feedparser.

Each poll is one GET that sends back the feed's ETag and Last-Modified, so an unchanged feed
costs a 304 and no parsing. A feed has no reliable order or numbering, so what is new is
decided by identity: every entry gets a stable id (its guid, else its link, else its title and
date), and the durable cursor remembers the ids already seen:
`{"etag": ..., "modified": ..., "seen": [post_id, ...]}` (newest first, at most 2,000). An
entry whose id is not in `seen` is new; new entries are delivered oldest first, each with a
cursor that already counts it as seen, so a crash between two deliveries repeats nothing and
skips nothing. A feed that reorders or re-dates its entries therefore produces no duplicates,
and storage is keyed on (source, channel, post_id) besides. An entry once seen is not read
again, so later edits to it are not followed (feeds rewrite entries for trivial reasons).

Whether an entry alerts is decided by the one first-read rule every source shares (see
`SourceFeed`: entries published more than a day before the feed was added are stored without
alerts). Only entries without a date need a rule here: on the feed's first poll their age is
unknown, so they are recorded as seen, not delivered; an undated entry that appears later is
new by its appearance.

A document that is not well-formed but readable is logged once per source and problem, not
on every poll.

Documents are parsed by feedparser from bytes already fetched through the bounded `fetch()`
(feedparser never opens a URL or a file itself), in a worker thread so a large feed does not
stall the event loop.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit
from xml.sax import SAXParseException

import aiohttp
import feedparser

from bot.domain import Post, SourceSpec, clean_text, clean_title
from bot.sources.base import Feed, RetryLater, SourceStopped
from bot.sources.html_text import html_to_text
from bot.sources.http import Fetched, fetch, host_of
from bot.sources.polling import poll_forever

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 5 * 1024 * 1024  # big news feeds are ~1 MB; anything larger is not a feed
MAX_ENTRIES = 500  # entries considered per document (the first ones: feeds list newest first)
MAX_SEEN = 2_000  # ids kept in the cursor: four full documents of the largest size considered
FETCH_TIMEOUT = 20.0
MAX_RETRY_AFTER = 24 * 3600.0  # a server asking for a longer wait is capped to a day
POST_ID_CHARS = 24  # hex digits of sha256: 96 bits, short and collision-free in practice

_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)  # older dates are a broken CMS, not old news
_FUTURE_SLACK = timedelta(days=1)
_MAX_VALIDATOR_CHARS = 1_000  # an ETag or Last-Modified longer than this is not kept
_MAX_URL_CHARS = 2_000

_HEADERS = {
    "User-Agent": "Dozor/0.1 (+https://github.com/dozor; feed reader)",
    "Accept": (
        "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
        "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
    ),
}
_GONE = {
    401: "the feed refuses access (it needs a login or blocks readers); check the address",
    403: "the feed refuses access (it needs a login or blocks readers); check the address",
    404: "the feed is gone; check the address",
    410: "the feed is gone; check the address",
}
_TAG = re.compile(r"<[A-Za-z/!]")
_WHERE = re.compile(r" at line \d+$")  # a problem's place moves as entries come and go
_TRAILING_ELLIPSIS = ("…", "...")


class FeedError(Exception):
    """The feed could not be read (an error status, a document that is no feed); the poller
    logs it and retries with back-off."""


class FeedGone(FeedError, SourceStopped):
    """The server says the feed is not there or not for us (401, 403, 404, 410)."""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry as the feed shows it; its text is already plain and cleaned."""

    post_id: str
    date: datetime | None  # None when the feed gives no date, or an absurd one
    text: str
    url: str | None
    position: int  # place in the document, 0 first (feeds usually list newest first)

    def to_post(self, channel: str, now: datetime, title: str | None = None) -> Post:
        return Post(
            source="rss",
            channel=channel,
            post_id=self.post_id,
            date=self.date or now,
            text=self.text,
            url=self.url,
            channel_title=title,
        )


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """The entries of one document in document order, each id once, at most MAX_ENTRIES."""

    entries: list[FeedEntry]
    version: str  # feedparser's name of the format: rss20, rss10, rss091n, atom10 …
    total: int  # entries in the document, duplicates and those over the limit included
    problem: str | None = None  # why the document is not well-formed, when it is not
    title: str | None = None  # the feed's own name (its <title>), cleaned


def parse_feed(body: bytes, *, url: str, content_type: str | None, now: datetime) -> ParsedFeed:
    """Read an RSS or Atom document; FeedError when it holds no feed at all.

    A document that is not well-formed but still yields entries (feedparser's "bozo" feeds,
    common in the wild) is accepted, with the reason in `problem`.
    """
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    # A file object, never the bytes themselves: feedparser would try bytes as a file path.
    # Relative links are left unresolved (html_to_text then keeps only their words): against
    # the feed's own address they would turn bridges' hashtag links into junk addresses.
    result = feedparser.parse(
        io.BytesIO(body),
        response_headers=headers,
        sanitize_html=True,
        resolve_relative_uris=False,
    )
    version = _text(result.get("version"))
    raw_entries = result.get("entries")
    raw_entries = raw_entries if isinstance(raw_entries, list) else []
    problem = _bozo_reason(result)
    if not raw_entries and (not version or (problem is not None and not _harmless(result))):
        raise FeedError(f"{url} is not an RSS or Atom feed: {problem or 'no feed element'}")

    entries: list[FeedEntry] = []
    ids: set[str] = set()
    for position, raw in enumerate(raw_entries[:MAX_ENTRIES]):
        if not isinstance(raw, Mapping):
            continue
        entry = _entry(raw, position, now)
        if entry.post_id not in ids:  # the same entry listed twice is one entry
            ids.add(entry.post_id)
            entries.append(entry)
    return ParsedFeed(
        entries=entries,
        version=version,
        total=len(raw_entries),
        problem=problem,
        title=_feed_title(result),
    )


def channel_of(url: str) -> str:
    """The channel posts of a feed are stored under: its host without a leading `www.`."""
    return host_of(url).removeprefix("www.")


def entry_id(identity: str) -> str:
    """A bounded, deterministic post id for an entry's identity string."""
    return hashlib.sha256(identity.encode("utf-8", "replace")).hexdigest()[:POST_ID_CHARS]


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None if unreadable."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER)


# --- reading feedparser's untyped values ---------------------------------------------------


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _get(entry: Mapping[str, object], key: str) -> object:
    # Asked through `in` first: feedparser answers a missing `updated_parsed` with
    # `published_parsed` and a DeprecationWarning, but only when asked directly.
    return entry[key] if key in entry else None  # noqa: SIM401


def _detail_type(entry: Mapping[str, object], key: str) -> str:
    detail = _get(entry, key)
    return _text(detail.get("type")) if isinstance(detail, Mapping) else ""


def _bozo_reason(result: Mapping[str, object]) -> str | None:
    if not result.get("bozo"):
        return None
    exc = result.get("bozo_exception")
    if isinstance(exc, SAXParseException):  # "<unknown>:8:2: mismatched tag" reads badly
        reason = f"{exc.getMessage()} at line {exc.getLineNumber()}"
    else:
        reason = str(exc) if exc is not None else "not well-formed"
    return clean_text(" ".join(reason.split()), limit=300) or type(exc).__name__


def _feed_title(result: Mapping[str, object]) -> str | None:
    feed = result.get("feed")
    if not isinstance(feed, Mapping):
        return None
    return clean_title(_plain(_text(_get(feed, "title")), _detail_type(feed, "title_detail")))


def _harmless(result: Mapping[str, object]) -> bool:
    """A complaint feedparser itself rates as harmless: a declared charset it overrode."""
    return isinstance(result.get("bozo_exception"), feedparser.ThingsNobodyCaresAboutButMe)


def _plain(value: str, kind: str) -> str:
    """Text of a feed field: HTML when declared so or when it holds tags, else kept as is."""
    if "html" in kind.lower() or _TAG.search(value):
        return html_to_text(value)
    return value.strip()


def _date(entry: Mapping[str, object], now: datetime) -> datetime | None:
    for key in ("published_parsed", "updated_parsed"):
        value = _get(entry, key)
        if not isinstance(value, time.struct_time):
            continue
        try:
            date = datetime.fromtimestamp(calendar.timegm(value), UTC)
        except (ValueError, OverflowError, OSError):
            continue
        if _EARLIEST <= date <= now + _FUTURE_SLACK:
            return date
    return None


def _body(entry: Mapping[str, object]) -> str:
    candidates: list[str] = []
    content = _get(entry, "content")
    if isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping):
                candidates.append(_plain(_text(part.get("value")), _text(part.get("type"))))
    candidates.append(_plain(_text(_get(entry, "summary")), _detail_type(entry, "summary_detail")))
    return max(candidates, key=len)


def _starts_with_title(body: str, title: str) -> bool:
    """Whether the body already opens with the title (bridges make titles from first lines)."""
    flat = " ".join(body.split())
    if flat.startswith(title):
        return True
    for ellipsis in _TRAILING_ELLIPSIS:
        stem = title.removesuffix(ellipsis).rstrip()
        if stem != title and stem and flat.startswith(stem):
            return True
    return False


def _entry(entry: Mapping[str, object], position: int, now: datetime) -> FeedEntry:
    title = " ".join(
        _plain(_text(_get(entry, "title")), _detail_type(entry, "title_detail")).split()
    )
    body = _body(entry)
    text = (
        body
        if title and _starts_with_title(body, title)
        else "\n\n".join(part for part in (title, body) if part)
    )
    link = _text(_get(entry, "link")).strip()
    guid = _text(_get(entry, "id")).strip()
    # Order and dates do not enter the identity when there is a guid or a link, so a feed
    # that republishes or reorders entries yields the same ids.
    raw_date = _text(_get(entry, "published")) or _text(_get(entry, "updated"))
    identity = guid or link or f"{title}\n{raw_date.strip()}"
    return FeedEntry(
        post_id=entry_id(identity),
        date=_date(entry, now),
        text=clean_text(text),
        url=clean_text(link, limit=_MAX_URL_CHARS)
        if link.lower().startswith(("https://", "http://"))
        else None,
        position=position,
    )


# --- the cursor ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cursor:
    etag: str | None = None
    modified: str | None = None
    seen: tuple[str, ...] = ()


def _validator(value: object) -> str | None:
    if isinstance(value, str) and value.strip() and len(value) <= _MAX_VALIDATOR_CHARS:
        return value.strip()
    return None


def _load_cursor(text: str | None) -> _Cursor | None:
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    seen = data.get("seen") if isinstance(data, dict) else None
    if isinstance(data, dict) and isinstance(seen, list):
        return _Cursor(
            etag=_validator(data.get("etag")),
            modified=_validator(data.get("modified")),
            seen=tuple(item for item in seen if isinstance(item, str))[:MAX_SEEN],
        )
    log.warning("rss cursor %r is unreadable; reading the feed as if new", text[:100])
    return None


def _dump_cursor(cursor: _Cursor) -> str:
    return json.dumps(
        {"etag": cursor.etag, "modified": cursor.modified, "seen": list(cursor.seen)}
    )


def _remember(first: Iterable[str], rest: Sequence[str]) -> tuple[str, ...]:
    """`first` then the ids of `rest` not among them, each once, at most MAX_SEEN."""
    seen: dict[str, None] = dict.fromkeys(first)
    for post_id in rest:
        if len(seen) >= MAX_SEEN:
            break
        seen.setdefault(post_id)
    return tuple(seen)[:MAX_SEEN]


# --- the source ------------------------------------------------------------------------------


class RssSource:
    """Polls one RSS or Atom feed every `interval` seconds; with `once=True` a single time."""

    def __init__(
        self,
        url: str,
        *,
        interval: float = 600.0,
        timeout: float = FETCH_TIMEOUT,
        session_factory: Callable[[], aiohttp.ClientSession] = aiohttp.ClientSession,
        once: bool = False,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        url = url.strip()
        try:
            parts = urlsplit(url)
            valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        except ValueError:
            valid = False
        if not valid:
            raise ValueError(
                f"{url!r} is not a feed address: expected an http(s) URL such as "
                "https://example.com/rss.xml"
            )
        if interval <= 0 or timeout <= 0:
            raise ValueError("interval and timeout must be positive")
        self.spec = SourceSpec("rss", url)
        self.url = url
        self.channel = channel_of(url)
        self.interval = interval
        self.timeout = timeout
        self.once = once
        self._now = now
        # The session made by run() belongs to it; the Poller passes its own to poll().
        self._session_factory = session_factory
        self._problem: str | None = None  # the malformation last logged (None: well-formed)

    @property
    def host(self) -> str:
        return host_of(self.url)

    async def run(self, feed: Feed) -> None:
        await poll_forever(self, feed, once=self.once, session_factory=self._session_factory)

    async def poll(self, session: aiohttp.ClientSession, feed: Feed) -> int:
        """Fetch the feed once and deliver its new entries, oldest first; returns how many."""
        written = await feed.cursor()
        state = _load_cursor(written)
        answer = await fetch(
            session,
            self.url,
            headers=self._request_headers(state),
            time_limit=self.timeout,
            max_bytes=MAX_BODY_BYTES,
        )
        if answer.status == 304:
            return 0  # not modified since the validators in the cursor
        if answer.status != 200:
            raise self._status_error(answer)

        now = self._now()
        parsed = await asyncio.to_thread(
            parse_feed,
            answer.body,
            url=self.url,
            content_type=answer.headers.get("Content-Type"),
            now=now,
        )
        self._note_problem(parsed.problem)
        if parsed.total > MAX_ENTRIES:
            log.warning(
                "rss %s: %d entries; only the first %d are read",
                self.url,
                parsed.total,
                MAX_ENTRIES,
            )

        before = state or _Cursor()
        known = set(before.seen)
        fresh = [entry for entry in parsed.entries if entry.post_id not in known]
        if state is None:
            # First run: an undated entry may be years old; it is only recorded as seen.
            fresh = [entry for entry in fresh if entry.date is not None]
        # Oldest first; equal dates in reverse document order, since feeds list newest first.
        fresh.sort(key=lambda entry: (entry.date or now, -entry.position))

        pending = {entry.post_id for entry in fresh}
        for entry in fresh:
            pending.discard(entry.post_id)
            # Everything in the document but the entries still to come counts as seen. The
            # validators stay the old ones until the end: a crash after this delivery must not
            # turn the next poll into a 304 that hides the entries not yet delivered.
            cursor = _dump_cursor(
                _Cursor(
                    etag=before.etag,
                    modified=before.modified,
                    seen=_remember(
                        (e.post_id for e in parsed.entries if e.post_id not in pending),
                        before.seen,
                    ),
                )
            )
            await feed.deliver(entry.to_post(self.channel, now, parsed.title), cursor)
            written = cursor

        final = _dump_cursor(
            _Cursor(
                etag=_validator(answer.headers.get("ETag")),
                modified=_validator(answer.headers.get("Last-Modified")),
                seen=_remember((entry.post_id for entry in parsed.entries), before.seen),
            )
        )
        if final != written:
            await feed.advance(final)
        if fresh:
            log.info(
                "rss %s: %d new entr%s", self.url, len(fresh), "y" if len(fresh) == 1 else "ies"
            )
        return len(fresh)

    def _note_problem(self, problem: str | None) -> None:
        """Log a malformed document once per problem, not on every poll; and its repair."""
        key = None if problem is None else _WHERE.sub("", problem)
        if key == self._problem:
            return
        if problem is not None:
            log.warning("rss %s: the feed is not well-formed (%s); read anyway", self.url, problem)
        else:
            log.info("rss %s: the feed is well-formed again", self.url)
        self._problem = key

    def _request_headers(self, state: _Cursor | None) -> dict[str, str]:
        headers = dict(_HEADERS)
        if state is not None and state.etag:
            headers["If-None-Match"] = state.etag
        if state is not None and state.modified:
            headers["If-Modified-Since"] = state.modified
        return headers

    def _status_error(self, answer: Fetched) -> Exception:
        status = answer.status
        if status in _GONE:
            return FeedGone(f"GET {self.url}: HTTP {status}: {_GONE[status]}")
        if status in (429, 503):
            delay = retry_after(answer.headers.get("Retry-After"), self._now())
            if delay is not None:
                return RetryLater(
                    f"GET {self.url}: HTTP {status}: the server asks to wait {delay:g} s", delay
                )
            return FeedError(f"GET {self.url}: HTTP {status} (busy or rate-limiting)")
        return FeedError(f"GET {self.url}: HTTP {status}")
