"""Mentions-per-day chart: one line per query over the last days, as a PNG for a phone screen.

`chart_data` is pure: it cuts the counts to a window of days, fills the missing days with 0 and
keeps the few busiest queries (the rest summed into one "other" line), so what the chart says is
tested without drawing. `build_figure` draws that data and `render_chart` turns it into PNG bytes.

Drawing choices:
- Only `matplotlib.figure.Figure` and the Agg canvas, never `pyplot`: pyplot keeps a global list of
  figures and a current figure, which is neither thread-safe (charts render in worker threads
  through `asyncio.to_thread`) nor freed unless closed. A bare `Figure` is garbage like any object.
- Global rcParams are never changed (other threads read them); the font family and sizes are
  passed to each artist. DejaVu Sans ships with matplotlib and covers Cyrillic.
- 1080×1080 px: Telegram shows a photo the width of the chat, and a square one keeps the plot
  tall enough on a portrait screen. Type is 25–33 px so it stays legible at a third of that width.
- Lines with markers: a day-by-day trend reads better as lines than as 6×14 bars, and overlapping
  lines stay apart by their marker shapes. The colours are Okabe–Ito, safe for colour-blind eyes,
  without its yellow (too faint on white).
- The legend sits above the plot, outside it, so it never hides a peak; y ticks are whole numbers
  from 0; the x axis names at most `MAX_DAY_TICKS` days, counted back from the newest day so the
  last day is always named.
"""

from __future__ import annotations

import gc
import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import MaxNLocator

from bot.delivery.render import shorten

DEFAULT_DAYS = 14
DEFAULT_MAX_SERIES = 6
MAX_LABEL = 28  # characters of a query shown in the legend, the ellipsis included

FIGURE_INCHES = 9.0
DPI = 120  # 9 in × 120 dpi = 1080 px a side
FONT_FAMILY = "DejaVu Sans"
TITLE_SIZE = 20.0  # points; at 120 dpi a point is 5/3 px, so 33 px
TEXT_SIZE = 15.0  # ticks and legend: 25 px
LINE_WIDTH = 3.5
MARKER_SIZE = 11.0
MAX_DAY_TICKS = 7  # "28 нояб." needs ~130 px; 7 of them fit across the plot without rotating
Y_HEADROOM = 1.08  # room above the highest marker so it is not cut by the frame
# Okabe–Ito without yellow; black last, for a seventh line if max_series is ever raised.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
GRID_COLOR = "#d9d9d9"


@dataclass(frozen=True, slots=True)
class Series:
    """One line of the chart: a query (or "other") and its mentions per day."""

    label: str
    counts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ChartData:
    """Days oldest first; each series has one count per day, busiest series first."""

    days: tuple[date, ...]
    series: tuple[Series, ...]


def chart_data(
    counts: Mapping[str, Mapping[date, int]],
    last_day: date,
    *,
    days: int = DEFAULT_DAYS,
    max_series: int = DEFAULT_MAX_SERIES,
    other_label: str,
) -> ChartData:
    """The `days` days ending with `last_day` and at most `max_series` lines to draw.

    Queries without a mention in the window are left out. When more remain than `max_series`,
    the busiest `max_series - 1` keep their own line and the rest are summed into a last line
    named `other_label`. Lines go by total descending, then by label.
    """
    if days < 1 or max_series < 1:
        raise ValueError(f"days and max_series must be positive, not {days} and {max_series}")
    window = tuple(last_day - timedelta(days=back) for back in range(days - 1, -1, -1))
    rows = [
        (label, tuple(per_day.get(day, 0) for day in window)) for label, per_day in counts.items()
    ]
    rows = [(label, row) for label, row in rows if sum(row) > 0]
    rows.sort(key=lambda item: (-sum(item[1]), item[0]))
    if len(rows) > max_series:
        kept, rest = rows[: max_series - 1], rows[max_series - 1 :]
        other = tuple(sum(column) for column in zip(*(row for _, row in rest), strict=True))
        rows = [*kept, (other_label, other)]
    series = tuple(Series(shorten(label, MAX_LABEL), row) for label, row in rows)
    return ChartData(days=window, series=series)


def build_figure(data: ChartData, *, title: str, day_label: Callable[[date], str]) -> Figure:
    """The chart as a matplotlib figure on an Agg canvas, not yet drawn."""
    figure = Figure(figsize=(FIGURE_INCHES, FIGURE_INCHES), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    # A long title wraps to the figure's width instead of running off both edges.
    # Titles, labels and queries are plain text: `$…$` in a query is not TeX (matplotlib
    # would parse it as mathtext, and fail on `$x^\frac{$`).
    figure.suptitle(
        title,
        fontsize=TITLE_SIZE,
        fontfamily=FONT_FAMILY,
        fontweight="bold",
        wrap=True,
        parse_math=False,
    )
    axes = figure.add_subplot()
    positions = range(len(data.days))
    for index, series in enumerate(data.series):
        axes.plot(
            positions,
            series.counts,
            label=series.label,
            color=PALETTE[index % len(PALETTE)],
            marker=MARKERS[index % len(MARKERS)],
            linewidth=LINE_WIDTH,
            markersize=MARKER_SIZE,
            markeredgecolor="white",
            markeredgewidth=1.2,
            clip_on=False,  # a marker on 0 would otherwise be cut in half by the frame
            # Where lines overlap the busiest one stays on top.
            zorder=3 + len(data.series) - index,
        )

    # Name every `step`-th day counting back from the newest, which is always named.
    step = math.ceil(len(data.days) / MAX_DAY_TICKS)
    named = list(range(len(data.days) - 1, -1, -step))[::-1]
    axes.set_xticks(named, [day_label(data.days[index]) for index in named])
    for tick in axes.get_xticklabels():
        tick.set_parse_math(False)
    axes.set_xlim(-0.5, len(data.days) - 0.5)
    peak = max((max(series.counts) for series in data.series), default=0)
    axes.set_ylim(0, max(peak, 1) * Y_HEADROOM)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.tick_params(labelsize=TEXT_SIZE, labelfontfamily=FONT_FAMILY, length=6, width=1.2)
    axes.grid(True, color=GRID_COLOR, linewidth=1.0)
    axes.set_axisbelow(True)
    axes.spines[["top", "right"]].set_visible(False)

    if data.series:
        # Anchored above the axes (not `figure.legend`) so the layout stacks it under the title.
        legend = axes.legend(
            loc="lower center",
            bbox_to_anchor=(0.5, 1.01),
            borderaxespad=0.0,
            ncols=min(2, len(data.series)),
            frameon=False,
            prop=FontProperties(family=FONT_FAMILY, size=TEXT_SIZE),
            handlelength=2.2,
            columnspacing=1.5,
        )
        for text in legend.get_texts():
            text.set_parse_math(False)
    return figure


def render_chart(data: ChartData, *, title: str, day_label: Callable[[date], str]) -> bytes:
    """The chart as PNG bytes (1080×1080); safe to call from several threads at once."""
    png = _png(build_figure(data, title=title, day_label=day_label))
    # A drawn figure is a web of reference cycles (artists keep the renderer and its 4.7 MB
    # pixel buffer), so it waits for the cyclic collector; left to the default thresholds,
    # dead charts piled up to ~200 MB in a process the bot's size. Collecting the young
    # generations frees them for under a millisecond (a full collection would take ~200 ms
    # while holding the GIL, stalling the event loop).
    gc.collect(1)
    return png


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    # print_png, not savefig: it ignores the global savefig.* settings (dpi, bbox, colours).
    FigureCanvasAgg(figure).print_png(buffer)  # type: ignore[no-untyped-call]  # no stub upstream
    return buffer.getvalue()
