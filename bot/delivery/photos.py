"""Pictures the outbox sends: a digest's trend chart, stored as its data and drawn when it
is sent (on a worker thread: drawing takes a few hundred milliseconds of CPU)."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from bot.chart import ChartData, Series, render_chart

# One thread draws every chart (the digest's and /stats'): matplotlib is not thread-safe, and
# one drawing at a time keeps a burst of digests from taking both cores from ingest.
_DRAWING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chart")


class BadChart(ValueError):
    """A chart row whose data cannot be read or drawn: set aside, never retried."""


def read_chart(payload: str) -> tuple[ChartData, str, dict[date, str], str]:
    """The chart's data, title, day labels and caption from an outbox row's text."""
    try:
        data = json.loads(payload)
        days = tuple(date.fromisoformat(day) for day in data["days"])
        series = tuple(
            Series(str(label), tuple(int(n) for n in counts)) for label, counts in data["series"]
        )
        labels = dict(zip(days, (str(label) for label in data["labels"]), strict=True))
        if any(len(s.counts) != len(days) for s in series):
            raise ValueError("a series does not have one count per day")
        return ChartData(days, series), str(data["title"]), labels, str(data["caption"])
    except (ValueError, TypeError, KeyError) as exc:
        raise BadChart(f"unreadable chart data: {exc}") from exc


def draw_chart(payload: str) -> tuple[bytes, str]:
    """The PNG of an outbox row's chart, and its caption."""
    data, title, labels, caption = read_chart(payload)
    try:
        return render_chart(data, title=title, day_label=labels.__getitem__), caption
    except Exception as exc:  # matplotlib refused it (data it cannot draw): the same next time
        raise BadChart(f"the chart could not be drawn: {exc}") from exc


async def draw_chart_async(payload: str) -> tuple[bytes, str]:
    """`draw_chart` on the drawing thread, the event loop free meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(_DRAWING, draw_chart, payload)
