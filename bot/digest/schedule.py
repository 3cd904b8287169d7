"""When each chat's digest is due: its own time in its own zone, once a day, right across
clock changes (a time the clock skips comes at the jump; one it shows twice, the first time).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo

from bot.delivery.chats import chat_zone, parse_clock, wall_instants
from bot.domain import Subscriber


def _first_instant(day: date, at: time, tz: tzinfo) -> datetime:
    # When the clock shows `at` twice (put back), the first time counts; when it skips it
    # (put forward), the moment of the jump.
    return wall_instants(day, at, tz)[0]


def latest_slot(now: datetime, at: time, tz: tzinfo) -> datetime:
    """The most recent moment, at or before `now`, when the clock in `tz` showed `at`."""
    local_date = now.astimezone(tz).date()
    for offset in range(0, 3):
        slot = _first_instant(local_date - timedelta(days=offset), at, tz)
        if slot <= now:
            return slot
    raise AssertionError(f"{at} never came before {now} in {tz}")  # pragma: no cover


def next_slot(now: datetime, at: time, tz: tzinfo) -> datetime:
    """The first moment after `now` when the clock in `tz` shows `at` (once a day)."""
    local_date = now.astimezone(tz).date()
    for offset in range(-1, 3):
        slot = _first_instant(local_date + timedelta(days=offset), at, tz)
        if slot > now:
            return slot
    raise AssertionError(f"{at} never comes after {now} in {tz}")  # pragma: no cover


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
