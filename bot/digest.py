"""Daily digests: when each subscriber is due, what goes in, and how it is rendered.

The scheduler runs one periodic job; whether a subscriber is due is a pure function of the
time of their previous digest, so a digest missed while Dozor was down is sent at the next
start and no digest is sent twice.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo

from bot.delivery.render import MAX_MESSAGE, safe_link, shorten, visible_length
from bot.domain import DigestEntry, Subscriber
from bot.storage import Storage

log = logging.getLogger(__name__)

DEFAULT_WINDOW = timedelta(hours=24)
SNIPPET_CHARS = 220
QUERIES_CHARS = 200


def latest_slot(now: datetime, at: time, tz: tzinfo) -> datetime:
    """The most recent moment, at or before `now`, when the clock in `tz` showed `at`."""
    # Compare in UTC: aware datetimes sharing a tzinfo compare by wall clock, which is wrong
    # on the days clocks change.
    local_date = now.astimezone(tz).date()
    slot = datetime.combine(local_date, at, tzinfo=tz).astimezone(UTC)
    if slot > now:
        slot = datetime.combine(local_date - timedelta(days=1), at, tzinfo=tz).astimezone(UTC)
    return slot


def digest_due(subscriber: Subscriber, now: datetime, at: time, tz: tzinfo) -> bool:
    """Whether the subscriber's digest for the latest slot has not been sent yet."""
    slot = latest_slot(now, at, tz)
    reference = subscriber.last_digest_at or subscriber.created_at
    return reference < slot


def _queries_label(entry: DigestEntry) -> str:
    return shorten(" ".join(", ".join(entry.queries).split()), QUERIES_CHARS)


def _entry(entry: DigestEntry, tz: tzinfo) -> tuple[str, int]:
    """One digest line as HTML, and its length as Telegram counts it (tags not counted)."""
    post = entry.post.post
    title = f"{post.channel} · {post.date.astimezone(tz).strftime('%d.%m %H:%M')}"
    snippet = shorten(" ".join(post.text.split()), SNIPPET_CHARS)
    queries = _queries_label(entry)
    link = safe_link(post.url)
    head = html.escape(title, quote=False)
    if link:
        head = f'<a href="{link}">{head}</a>'
    block = (
        f"• {head} — <i>{html.escape(queries, quote=False)}</i>\n"
        f"{html.escape(snippet, quote=False)}"
    )
    return block, visible_length(f"• {title} — {queries}\n{snippet}")


def render_digest(
    entries: Sequence[DigestEntry], since: datetime, until: datetime, tz: tzinfo
) -> list[str]:
    """The digest as one or more messages, each within Telegram's limit."""
    period = (
        f"{since.astimezone(tz).strftime('%d.%m %H:%M')} – "
        f"{until.astimezone(tz).strftime('%d.%m %H:%M %Z')}"
    )
    title = f"📰 Digest: {len(entries)} matched post(s), {period}"
    parts: list[str] = []
    current = [f"<b>{html.escape(title, quote=False)}</b>"]
    size = visible_length(title)
    for entry in entries:
        block, block_size = _entry(entry, tz)
        block_size += 2  # the blank line between entries
        if size + block_size > MAX_MESSAGE - 50:
            parts.append("\n\n".join(current))
            current, size = [], 0
        current.append(block)
        size += block_size
    parts.append("\n\n".join(current))
    return parts


async def queue_digests(
    storage: Storage, now: datetime, at: time, tz: tzinfo, *, force: bool = False
) -> int:
    """Queue the digest of every subscriber who is due (all, with force); returns how many."""
    queued = 0
    for subscriber in await storage.active_subscribers():
        if not force and not digest_due(subscriber, now, at, tz):
            continue
        since = subscriber.last_digest_at or now - DEFAULT_WINDOW
        entries = await storage.digest_entries(subscriber.chat_id, since, now)
        if not entries:
            if not force:  # nothing to say: just move the mark to this slot
                await storage.queue_digest(subscriber.chat_id, [], now)
            continue
        await storage.queue_digest(subscriber.chat_id, render_digest(entries, since, now, tz), now)
        queued += 1
        log.info("digest for chat %d: %d post(s)", subscriber.chat_id, len(entries))
    return queued
