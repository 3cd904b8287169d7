"""A chat's own settings as delivery applies them: its language, its time zone, and when its
alerts are held (a mute, quiet hours).

Pure functions of a `Subscriber` and a moment. Wall-clock times are turned into moments in
UTC with both folds considered, because on the days clocks change a local time may happen
twice (autumn) or never (spring): a quiet spell ends the first time the clock shows its end
after it began, or the moment the clock jumps past it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.domain import Subscriber
from bot.i18n import Catalog, Texts, language_for

MOMENT_PATTERN = "d MMM HH:mm"  # CLDR: `28 Nov 14:05`, `28 нояб. 14:05`
_CLOCK = re.compile(r"(\d{1,2})[:.](\d{2})")
_NUMERIC_ZONE = re.compile(r"([+-])(\d{2})(\d{2})?")
# A mute and quiet hours can each push the release past the other at most once or twice;
# the bound only guards against a zone whose rules would keep them alternating.
_MAX_STEPS = 8


def parse_clock(text: str | None) -> time | None:
    """`08:30`, `8:30` or `8.30` as a time of day; None when blank or not a valid time."""
    match = _CLOCK.fullmatch((text or "").strip())
    if match is None:
        return None
    hours, minutes = int(match[1]), int(match[2])
    if hours > 23 or minutes > 59:
        return None
    return time(hours, minutes)


def clock_text(at: time) -> str:
    """A time of day as stored and shown: `08:30`."""
    return f"{at.hour:02d}:{at.minute:02d}"


def chat_zone(subscriber: Subscriber | None, default: tzinfo) -> tzinfo:
    """The chat's time zone, or the service's when it chose none (or one tzdata lost)."""
    name = subscriber.timezone if subscriber is not None else None
    if not name:
        return default
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return default


def chat_language(subscriber: Subscriber) -> str:
    """The language a chat is written to unprompted: its choice, else the Telegram
    language_code last seen there."""
    return subscriber.language or language_for(subscriber.tg_language)


def chat_texts(catalog: Catalog, subscriber: Subscriber | None) -> Texts:
    return catalog.texts(chat_language(subscriber) if subscriber is not None else None)


def zone_label(moment: datetime) -> str:
    """The zone's abbreviation at `moment` (`MSK`, `CET`, `EST`); `UTC+3` where tzdata has
    only an offset (`+03`)."""
    abbreviation = moment.strftime("%Z")
    match = _NUMERIC_ZONE.fullmatch(abbreviation)
    if match is None:
        return abbreviation or "UTC"
    sign, hours, minutes = match[1], int(match[2]), match[3]
    return f"UTC{sign}{hours}" + (f":{minutes}" if minutes and minutes != "00" else "")


def moment_text(t: Texts, moment: datetime, tz: tzinfo) -> str:
    """A moment as a chat reads it: `28 Nov 14:05 MSK` in its language and zone."""
    local = moment.astimezone(tz)
    return f"{t.date(local, MOMENT_PATTERN)} {zone_label(local)}"


def wall_instants(day: date, at: time, tz: tzinfo) -> list[datetime]:
    """The moments (UTC) when the clock in `tz` shows `at` on `day`: usually one, two when
    the clock is put back over it, and when it is put forward over it, the moment of the
    jump (the first moment the clock shows a later time)."""
    wall = datetime.combine(day, at)
    found = set()
    for fold in (0, 1):
        moment = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)
        if moment.astimezone(tz).replace(tzinfo=None) == wall:
            found.add(moment)
    if found:
        return sorted(found)
    # Skipped: the two readings of `at` bracket the jump; find it to the second.
    low, high = sorted(
        int(wall.replace(tzinfo=tz, fold=fold).astimezone(UTC).timestamp()) for fold in (0, 1)
    )
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return [datetime.fromtimestamp(high, UTC)]


def next_wall_time(after: datetime, at: time, tz: tzinfo) -> datetime:
    """The first moment after `after` when the clock in `tz` shows `at` (or jumps past it)."""
    day = after.astimezone(tz).date()
    for offset in range(-1, 3):
        for moment in wall_instants(day + timedelta(days=offset), at, tz):
            if moment > after:
                return moment
    raise AssertionError(f"{at} never comes after {after} in {tz}")  # pragma: no cover


def in_quiet_hours(moment: datetime, start: time, end: time, tz: tzinfo) -> bool:
    """Whether the clock in `tz` at `moment` is within [start, end), across midnight when
    end is earlier than start. Equal start and end mean no quiet hours."""
    if start == end:
        return False
    wall = moment.astimezone(tz).time()
    if start < end:
        return start <= wall < end
    return wall >= start or wall < end


def held_until(subscriber: Subscriber, now: datetime, default_tz: tzinfo) -> datetime | None:
    """Until when the chat's alerts wait (a mute, its quiet hours, or one after the other),
    or None when they may go now."""
    tz = chat_zone(subscriber, default_tz)
    start, end = parse_clock(subscriber.quiet_start), parse_clock(subscriber.quiet_end)
    muted = subscriber.muted_until
    release = now
    for _ in range(_MAX_STEPS):
        moved = False
        if muted is not None and muted > release:
            release, moved = muted, True
        if start is not None and end is not None and in_quiet_hours(release, start, end, tz):
            release, moved = next_wall_time(release, end, tz), True
        if not moved:
            break
    return release if release > now else None
