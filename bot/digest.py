"""Daily digests: when each subscriber is due, what goes in, and how it is rendered.

The scheduler runs one periodic job; whether a subscriber is due is a pure function of the
time of their previous digest and of their own digest time and zone (the service's
DIGEST_TIME and TIMEZONE when they chose none), so a digest missed while Dozor was down is
sent at the next start and no digest is sent twice. A chat that turned its digest off gets
none, but its mark still moves at each slot: turned on again, its first digest covers a day,
not the whole time it was off. Digests are written in each chat's language; quiet hours and
mutes do not hold them (the chat chose their time itself).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo

from bot.delivery.chats import (
    MOMENT_PATTERN,
    chat_texts,
    chat_zone,
    moment_text,
    parse_clock,
    zone_label,
)
from bot.delivery.render import MAX_MESSAGE, html_length, safe_link, shorten, source_name
from bot.domain import DigestEntry, Subscriber
from bot.i18n import Catalog, Texts
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


def digest_time(subscriber: Subscriber, default: time) -> time:
    """The chat's digest time, or the service's when it chose none."""
    return parse_clock(subscriber.digest_time) or default


def digest_due(subscriber: Subscriber, now: datetime, at: time, tz: tzinfo) -> bool:
    """Whether the subscriber's latest digest slot has passed unmarked; `at` and `tz` are
    the service's defaults, the subscriber's own time and zone win. (A chat with its digest
    off is due too: its mark moves, nothing is sent.)"""
    slot = latest_slot(now, digest_time(subscriber, at), chat_zone(subscriber, tz))
    reference = subscriber.last_digest_at or subscriber.created_at
    return reference < slot


def _queries_label(entry: DigestEntry) -> str:
    return shorten(" ".join(", ".join(entry.queries).split()), QUERIES_CHARS)


def _entry(entry: DigestEntry, t: Texts, tz: tzinfo) -> str:
    """One digest line as HTML."""
    post = entry.post.post
    when = t.date(post.date.astimezone(tz), MOMENT_PATTERN)
    head = f"{html.escape(source_name(entry.post), quote=False)} · {when}"
    link = safe_link(post.url)
    if link:
        head = f'<a href="{link}">{head}</a>'
    snippet = shorten(" ".join(post.text.split()), SNIPPET_CHARS)
    queries = html.escape(_queries_label(entry), quote=False)
    return f"• {head} — <i>{queries}</i>\n{html.escape(snippet, quote=False)}"


def digest_period(t: Texts, since: datetime, until: datetime, tz: tzinfo) -> str:
    """`19 Nov 08:00 – 20 Nov 08:00 MSK`: the covered period, in the chat's language and
    zone (each end labelled when the clocks changed in between)."""
    start, end = since.astimezone(tz), until.astimezone(tz)
    if zone_label(start) == zone_label(end):
        return f"{t.date(start, MOMENT_PATTERN)} – {moment_text(t, until, tz)}"
    return f"{moment_text(t, since, tz)} – {moment_text(t, until, tz)}"


def render_digest(
    entries: Sequence[DigestEntry], since: datetime, until: datetime, t: Texts, tz: tzinfo
) -> list[str]:
    """The digest of the period (since, until] as one or more messages, each within
    Telegram's limit, in the chat's language `t` and zone `tz`."""
    period = digest_period(t, since, until, tz)
    title = t("digest-title", count=len(entries), period=period)
    parts: list[str] = []
    current = [f"<b>{title}</b>"]
    size = html_length(title)
    for entry in entries:
        block = _entry(entry, t, tz)
        block_size = html_length(block) + 2  # and the blank line between entries
        if size + block_size > MAX_MESSAGE - 50:
            parts.append("\n\n".join(current))
            current, size = [], 0
        current.append(block)
        size += block_size
    parts.append("\n\n".join(current))
    return parts


async def queue_digests(
    storage: Storage,
    now: datetime,
    at: time,
    tz: tzinfo,
    *,
    force: bool = False,
    catalog: Catalog | None = None,
) -> int:
    """Queue the digest of every subscriber who is due (all, with force); returns how many.

    `at` and `tz` are the service's digest time and zone, for chats that chose none.
    """
    catalog = catalog or Catalog()
    queued = 0
    for subscriber in await storage.active_subscribers():
        if not force and not digest_due(subscriber, now, at, tz):
            continue
        if not subscriber.digest_enabled:
            if not force:  # off: the slot passes without a digest
                await storage.queue_digest(subscriber.chat_id, [], now)
            continue
        since = subscriber.last_digest_at or now - DEFAULT_WINDOW
        entries = await storage.digest_entries(subscriber.chat_id, since, now)
        if not entries:
            if not force:  # nothing to say: just move the mark to this slot
                await storage.queue_digest(subscriber.chat_id, [], now)
            continue
        t = chat_texts(catalog, subscriber)
        zone = chat_zone(subscriber, tz)
        parts = render_digest(entries, since, now, t, zone)
        await storage.queue_digest(subscriber.chat_id, parts, now)
        queued += 1
        log.info("digest for chat %d: %d post(s)", subscriber.chat_id, len(entries))
    return queued
