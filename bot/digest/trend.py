"""The 14-day trend chart a digest (and /stats) carries: mentions per query per local day,
counted in the chat's zone, as the JSON an outbox row holds until it is drawn.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, tzinfo

from bot.chart import ChartData, chart_data
from bot.i18n import Texts
from bot.storage import ZoneShift

CHART_DAYS = 14


def _offset_minutes(moment: datetime, tz: tzinfo) -> int:
    offset = moment.astimezone(tz).utcoffset()
    return 0 if offset is None else int(offset.total_seconds() // 60)


def zone_shift(tz: tzinfo, start: datetime, end: datetime) -> ZoneShift:
    """The zone's UTC offsets (minutes) over [start, end] for counting posts by local day:
    (offset before, the moment it changed or None, offset after). Clocks change at most
    once in the two weeks a chart covers."""
    before, after = _offset_minutes(start, tz), _offset_minutes(end, tz)
    if before == after:
        return before, None, after
    low, high = start, end
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if _offset_minutes(middle, tz) == before:
            low = middle
        else:
            high = middle
    return before, high.replace(microsecond=0), after


def chart_window(now: datetime, tz: tzinfo) -> tuple[date, datetime, datetime]:
    """The last day shown and the (UTC) bounds of the matches read for a 14-day chart."""
    last_day = now.astimezone(tz).date()
    # A day more than the chart shows: matches are read by when they were found, counted
    # by the day of the post.
    return last_day, now - timedelta(days=CHART_DAYS + 1), now + timedelta(seconds=1)


def chart_shift(now: datetime, tz: tzinfo) -> ZoneShift:
    """The zone's offsets over the days a chart made `now` covers (`zone_shift`)."""
    _, read_from, read_to = chart_window(now, tz)
    return zone_shift(tz, read_from, read_to)


def chart_for(
    counts: Mapping[str, Mapping[date, int]], t: Texts, now: datetime, tz: tzinfo
) -> str | None:
    """A chat's chart as an outbox row carries it (`chart_payload`, with its caption), or
    None when none of its queries was mentioned in the 14 days."""
    data = subscriber_chart(counts, t, now, tz)
    if not data.series:
        return None
    return chart_payload(data, t, caption=_caption(t, data.days[0], data.days[-1]))


def chart_payload(data: ChartData, t: Texts, *, caption: str) -> str:
    """What an outbox row carries for a chart (drawn when sent): JSON."""
    return json.dumps(
        {
            "title": _chart_text(t, "chart-title", len(data.days)),
            "caption": caption,
            "days": [day.isoformat() for day in data.days],
            "labels": [_day_label(t, day) for day in data.days],
            "series": [[series.label, list(series.counts)] for series in data.series],
        },
        ensure_ascii=False,
    )


@functools.lru_cache(maxsize=256)
def _caption(t: Texts, first: date, last: date) -> str:
    return t("chart-caption", dates=t.interval(first, last))


@functools.lru_cache(maxsize=256)
def _chart_text(t: Texts, key: str, days: int = 0) -> str:
    return t(key, days=days)


@functools.lru_cache(maxsize=1024)
def _day_label(t: Texts, day: date) -> str:
    return t.date(datetime.combine(day, time(12)), "d MMM")


def subscriber_chart(
    counts: Mapping[str, Mapping[date, int]], t: Texts, now: datetime, tz: tzinfo
) -> ChartData:
    last_day, _, _ = chart_window(now, tz)
    return chart_data(counts, last_day, days=CHART_DAYS, other_label=_chart_text(t, "chart-other"))
