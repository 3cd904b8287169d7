"""`tgweb:NAME` — reads a channel's public web preview at `t.me/s/NAME`; no account needed.

The preview shows about 20 posts a page, oldest first; `?before=<id>` shows the page before
that id. Each poll reads the newest page and, when the durable cursor (`{"last_id": N}`) lies
further back than that page reaches, pages back to fill the gap before delivering anything, so
that posts are delivered in ascending id order and the cursor only moves forward.

Channels whose owners turned the preview off (and groups, and names that do not exist) are
redirected by Telegram to the plain `t.me/NAME` card; that is reported as `NoPreviewError`, and
the supervisor keeps retrying with back-off. The HTML is parsed with selectolax (lexbor): fast,
maintained, and tolerant of the broken markup a scraper meets.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import aiohttp
from selectolax.lexbor import LexborHTMLParser, LexborNode

from bot.domain import Post, SourceSpec, clean_text, clean_title
from bot.sources.base import Feed, SourceStopped
from bot.sources.html_text import node_text
from bot.sources.http import FetchError, fetch, host_of
from bot.sources.links import TELEGRAM_USERNAME
from bot.sources.polling import poll_forever

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 5 * 1024 * 1024  # a real page is ~50 KB; anything this big is not a preview
MAX_PAGES_PER_POLL = 50  # ~1,000 posts of catch-up per poll; bounds the work after long downtime
FETCH_TIMEOUT = 20.0

# A plain browser identity: t.me serves the same page to everyone, but some edge proxies
# answer unknown clients with a challenge. English is pinned because the "edited" marker is
# a word in the page, and the page language follows Accept-Language.
_HEADERS = {
    "User-Agent": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36"
    ),
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.9",
}

_DATA_POST = re.compile(r"[^/\s]+/(\d{1,18})")
_VIEWS = re.compile(r"(\d+(?:[.,]\d+)?)([KMB]?)", re.IGNORECASE)
_VIEW_MULTIPLIERS = {"": 1, "K": 1_000, "M": 1_000_000, "B": 1_000_000_000}
_EDITED = re.compile(r"\bedited\b", re.IGNORECASE)
_MEDIA = ".tgme_widget_message_photo_wrap, .tgme_widget_message_video_player"
# Where the page names the channel: its header, else the author line of each message.
_TITLE = ".tgme_channel_info_header_title, .tgme_widget_message_owner_name"


class TgWebError(Exception):
    """The public preview could not be read; the supervisor logs it and retries with back-off."""


class NoPreviewError(TgWebError, SourceStopped):
    """Telegram shows no public preview for this name (turned off, a group, or no such name)."""


class PageFormatError(TgWebError):
    """The answer was neither a preview nor a channel card: a changed layout or a stray page."""


@dataclass(frozen=True, slots=True)
class WebPost:
    """One message as the preview shows it; text is already cleaned."""

    id: int
    date: datetime
    text: str
    views: int | None = None
    edited: bool = False
    forwarded_from: str | None = None  # the name shown after "Forwarded from"
    forwarded_url: str | None = None  # its link, when the origin is public
    media_count: int = 0

    def to_post(self, channel: str, title: str | None = None) -> Post:
        forwarded = self.forwarded_from
        if self.forwarded_url:
            forwarded = f"{forwarded} ({self.forwarded_url})" if forwarded else self.forwarded_url
        return Post(
            # Keyed as a Telegram post: the same channel read through an account and through
            # the preview (say, after credentials are added) is one post, alerted once.
            source="telegram",
            channel=channel,
            post_id=str(self.id),
            date=self.date,
            text=clean_text(self.text),
            url=f"https://t.me/{channel}/{self.id}",
            edited=self.edited,
            forwarded_from=forwarded,
            views=self.views,
            media_count=self.media_count,
            channel_title=title,
        )


@dataclass(frozen=True, slots=True)
class ParsedPage:
    """What one preview page holds, oldest first as on the page."""

    posts: list[WebPost]
    has_preview: bool
    title: str | None = None  # the channel's name as the page shows it
    # Every message id on the page, service messages and unreadable ones included: paging
    # and the cursor go by ids, not by what was worth delivering.
    ids: list[int] = field(default_factory=list)
    skipped: list[tuple[int | None, str]] = field(default_factory=list)

    @property
    def oldest_id(self) -> int | None:
        return min(self.ids, default=None)

    @property
    def newest_id(self) -> int | None:
        return max(self.ids, default=None)


def parse_page(html: str, channel: str) -> ParsedPage:
    """Read a `t.me/s/<channel>` page; PageFormatError when it is no Telegram page at all."""
    tree = LexborHTMLParser(html)
    messages = tree.css(".tgme_widget_message[data-post]")
    if not messages and tree.css_first(".tgme_channel_history") is None:
        # The plain channel card (where t.me/s/<name> redirects when there is no preview).
        if tree.css_first(".tgme_page, .tgme_page_wrap") is not None:
            return ParsedPage(posts=[], has_preview=False)
        title = tree.css_first("title")
        shown = " ".join(title.text().split())[:80] if title is not None else ""
        raise PageFormatError(
            f"t.me/s/{channel}: the answer is not a channel preview"
            + (f" (title {shown!r})" if shown else "")
        )
    posts: list[WebPost] = []
    ids: list[int] = []
    skipped: list[tuple[int | None, str]] = []
    for node in messages:
        data_post = node.attributes.get("data-post") or ""
        match = _DATA_POST.fullmatch(data_post.strip())
        if match is None:
            skipped.append((None, f"data-post {data_post[:60]!r} holds no message id"))
            continue
        post_id = int(match.group(1))
        ids.append(post_id)
        if "service_message" in _classes(node):
            continue  # "Channel photo updated", "pinned …": nothing anyone wrote
        try:
            posts.append(_parse_message(node, post_id))
        except ValueError as exc:
            skipped.append((post_id, str(exc)))
    return ParsedPage(
        posts=posts, has_preview=True, title=_channel_title(tree), ids=ids, skipped=skipped
    )


def _channel_title(tree: LexborHTMLParser) -> str | None:
    for node in tree.css(_TITLE):
        if title := clean_title(node.text()):
            return title
    return None


def parse_views(text: str) -> int | None:
    """`987` → 987, `2.5K` → 2500, `1.2M` → 1200000; None when unreadable."""
    compact = "".join(text.split())  # Telegram puts narrow no-break spaces in counters
    match = _VIEWS.fullmatch(compact)
    if match is None:
        return None
    number, suffix = match.groups()
    # "9,874" without a suffix is a thousands separator; "2,5K" is a decimal comma.
    number = number.replace(",", ".") if suffix else number.replace(",", "")
    try:
        value = Decimal(number) * _VIEW_MULTIPLIERS[suffix.upper()]
    except InvalidOperation:
        return None
    return int(value)


def _classes(node: LexborNode) -> list[str]:
    return (node.attributes.get("class") or "").split()


def _parse_message(node: LexborNode, post_id: int) -> WebPost:
    time = node.css_first(".tgme_widget_message_date time[datetime]") or node.css_first(
        ".tgme_widget_message_meta time[datetime]"
    )
    if time is None:
        raise ValueError("no date")
    raw_date = time.attributes.get("datetime") or ""
    try:
        date = datetime.fromisoformat(raw_date)
    except ValueError:
        raise ValueError(f"date {raw_date[:40]!r} is unreadable") from None
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)

    text_node = _message_text_node(node)
    text = node_text(text_node) if text_node is not None else ""
    poll = _poll_text(node)
    text = "\n\n".join(part for part in (text, poll) if part)

    views_node = node.css_first(".tgme_widget_message_views")
    views = parse_views(views_node.text()) if views_node is not None else None

    forwarded_name: str | None = None
    forwarded_url: str | None = None
    forwarded = node.css_first(".tgme_widget_message_forwarded_from_name")
    if forwarded is not None:
        forwarded_name = clean_text(" ".join(forwarded.text().split()), limit=200) or None
        href = (forwarded.attributes.get("href") or "").strip()
        if href.lower().startswith(("https://", "http://")):
            forwarded_url = clean_text(href, limit=500)

    return WebPost(
        id=post_id,
        date=date,
        text=clean_text(text),
        views=views,
        edited=_is_edited(node),
        forwarded_from=forwarded_name,
        forwarded_url=forwarded_url,
        media_count=len(node.css(_MEDIA)),
    )


def _message_text_node(node: LexborNode) -> LexborNode | None:
    # The quoted message of a reply shares the base class with the post's own text; only the
    # `js-message_text` twin is the post itself.
    own = node.css_first(".tgme_widget_message_text.js-message_text")
    if own is not None:
        return own
    for candidate in node.css(".tgme_widget_message_text"):
        if "js-message_reply_text" not in _classes(candidate):
            return candidate
    return None


def _is_edited(node: LexborNode) -> bool:
    # "edited" is a bare word in the meta line, next to the date; there is no CSS class for it.
    # Only the line's own text counts, so a signature such as "Edited by Ivan" does not.
    meta = node.css_first(".tgme_widget_message_meta")
    if meta is None:
        return False
    return any(
        child.is_text_node and _EDITED.search(child.text_content or "")
        for child in meta.iter(include_text=True)
    )


def _poll_text(node: LexborNode) -> str:
    question = node.css_first(".tgme_widget_message_poll_question")
    if question is None:
        return ""
    lines = ["📊 " + node_text(question)]
    for option in node.css(".tgme_widget_message_poll_option_text"):
        if option_text := node_text(option):
            lines.append("• " + option_text)
    return "\n".join(lines)


def _load_cursor(text: str | None) -> int | None:
    if not text:
        return None
    try:
        value = json.loads(text)["last_id"]
    except (ValueError, KeyError, TypeError):
        value = None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    log.warning("tgweb cursor %r is unreadable; reading the newest page afresh", text[:100])
    return None


def _dump_cursor(last_id: int) -> str:
    return json.dumps({"last_id": last_id})


class TgWebSource:
    """Reads `t.me/s/<name>` once per `poll()`; `run()` polls on its own (once, with `once`)."""

    def __init__(
        self,
        name: str,
        *,
        base_url: str = "https://t.me",
        interval: float = 300.0,
        timeout: float = FETCH_TIMEOUT,
        session_factory: Callable[[], aiohttp.ClientSession] = aiohttp.ClientSession,
        once: bool = False,
    ) -> None:
        channel = name.strip().removeprefix("@")
        if not TELEGRAM_USERNAME.fullmatch(channel):
            raise ValueError(f"{name!r} is not a Telegram channel username (5–32 letters)")
        if interval <= 0 or timeout <= 0:
            raise ValueError("interval and timeout must be positive")
        self.spec = SourceSpec("tgweb", name)
        # Usernames are case-insensitive; one spelling keeps the stored key stable.
        self.channel = channel.lower()
        self.base_url = base_url.rstrip("/")
        self.interval = interval
        self.timeout = timeout
        self.once = once
        # run() makes its own session; the service's Poller calls poll() with a shared one.
        self._session_factory = session_factory

    @property
    def host(self) -> str:
        return host_of(self.base_url)

    async def run(self, feed: Feed) -> None:
        await poll_forever(self, feed, once=self.once, session_factory=self._session_factory)

    async def poll(self, session: aiohttp.ClientSession, feed: Feed) -> int:
        """Read the channel once and deliver what is new; returns how many new posts."""
        last_id = _load_cursor(await feed.cursor())
        newest = await self._page(session, None, last_id)
        pages = [newest]
        if last_id is not None:
            # On a first run (no cursor) only the newest page is read: walking the whole
            # history of a big channel would take thousands of requests. (Whether its posts
            # alert is the feed's one rule for every source: see `SourceFeed`.)
            pages += await self._pages_back_to(session, newest, last_id)

        posts: dict[int, WebPost] = {}
        for page in pages:
            for post in page.posts:
                posts.setdefault(post.id, post)
        fresh = sorted(
            (post for post in posts.values() if last_id is None or post.id > last_id),
            key=lambda post: post.id,
        )
        if last_id is not None:
            # Edited posts still on the newest page are handed over again with the unchanged
            # cursor: ingest ignores an unchanged text and stores a changed one as an edit.
            for post in sorted(newest.posts, key=lambda post: post.id):
                if post.id <= last_id and post.edited:
                    await feed.deliver(
                        post.to_post(self.channel, newest.title), _dump_cursor(last_id)
                    )
        for post in fresh:
            await feed.deliver(post.to_post(self.channel, newest.title), _dump_cursor(post.id))

        # Service messages (and unreadable ones) above the last post move the cursor too.
        reached = max([last_id or 0, *(post.id for post in fresh)])
        top = newest.newest_id
        if top is not None and top > reached:
            await feed.advance(_dump_cursor(top))
        if fresh:
            log.info("tgweb @%s: %d new post(s), up to %d", self.channel, len(fresh), fresh[-1].id)
        return len(fresh)

    async def _pages_back_to(
        self, session: aiohttp.ClientSession, newest: ParsedPage, last_id: int
    ) -> list[ParsedPage]:
        """Older pages, newest first, until one reaches back to the post after `last_id`."""
        older: list[ParsedPage] = []
        page = newest
        while page.oldest_id is not None and page.oldest_id > last_id + 1:
            if 1 + len(older) >= MAX_PAGES_PER_POLL:
                log.warning(
                    "tgweb @%s: more than %d pages behind; posts %d–%d are not read",
                    self.channel,
                    MAX_PAGES_PER_POLL,
                    last_id + 1,
                    page.oldest_id - 1,
                )
                break
            before = page.oldest_id
            page = await self._page(session, before, last_id)
            if page.oldest_id is None:
                break  # nothing before: the channel's first post has been read
            if page.oldest_id >= before:
                # A page that does not go back would make this loop spin; stop instead.
                log.warning(
                    "tgweb @%s: ?before=%d returned no older posts; stopping", self.channel, before
                )
                break
            older.append(page)
        return older

    async def _page(
        self, session: aiohttp.ClientSession, before: int | None, last_id: int | None
    ) -> ParsedPage:
        html = await self._fetch(session, before)
        page = parse_page(html, self.channel)
        if not page.has_preview:
            raise NoPreviewError(
                f"channel @{self.channel} has no public web preview; "
                f"use telegram:@{self.channel} with an account"
            )
        for post_id, reason in page.skipped:
            # Old unreadable messages would be reported on every poll; only new ones matter.
            if post_id is None or last_id is None or post_id > last_id:
                log.warning("tgweb @%s: message skipped: %s", self.channel, reason)
        return page

    async def _fetch(self, session: aiohttp.ClientSession, before: int | None) -> str:
        url = f"{self.base_url}/s/{self.channel}"
        shown = url if before is None else f"{url}?before={before}"
        answer = await fetch(
            session,
            url,
            params=None if before is None else {"before": str(before)},
            headers=_HEADERS,
            time_limit=self.timeout,
            max_bytes=MAX_BODY_BYTES,
            shown=shown,
        )
        if answer.status != 200:
            hint = " (Telegram is rate-limiting)" if answer.status == 429 else ""
            raise FetchError(f"GET {shown}: HTTP {answer.status}{hint}")
        return answer.text()
