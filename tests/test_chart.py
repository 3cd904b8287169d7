"""Mentions chart: which lines the data keeps, what the figure draws, and the PNG a user gets."""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import numpy as np
import pytest
from PIL import Image

from bot.chart import (
    DPI,
    FIGURE_INCHES,
    MAX_DAY_TICKS,
    MAX_LABEL,
    PALETTE,
    ChartData,
    Series,
    build_figure,
    chart_data,
    render_chart,
)

LAST = date(2026, 11, 28)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIZE = round(FIGURE_INCHES * DPI)
RU_MONTHS = "янв. февр. мар. апр. мая июн. июл. авг. сент. окт. нояб. дек.".split()
TITLE = "Упоминания по дням, 15–28 нояб."


def _ru_day(day: date) -> str:
    return f"{day.day} {RU_MONTHS[day.month - 1]}"


def _ago(days: int) -> date:
    return LAST - timedelta(days=days)


def _flat(counts: Mapping[str, int]) -> dict[str, dict[date, int]]:
    """Each query mentioned `total` times on the last day of the window only."""
    return {label: {LAST: total} for label, total in counts.items()}


def _labels(data: ChartData) -> list[str]:
    return [series.label for series in data.series]


# chart_data: what the chart says


def test_days_run_oldest_first_and_missing_days_are_zero() -> None:
    data = chart_data({"СНВ-3": {LAST: 3, _ago(2): 1}}, LAST, days=4, other_label="прочие")

    assert data.days == (_ago(3), _ago(2), _ago(1), LAST)
    assert data.series == (Series("СНВ-3", (0, 1, 0, 3)),)


def test_counts_outside_the_window_are_ignored() -> None:
    counts = {"ДРСМД": {_ago(7): 50, _ago(6): 2, LAST: 1, LAST + timedelta(days=1): 40}}

    data = chart_data(counts, LAST, days=7, other_label="прочие")

    assert len(data.days) == 7
    assert data.series == (Series("ДРСМД", (2, 0, 0, 0, 0, 0, 1)),)


def test_lines_go_by_total_then_by_label() -> None:
    counts = {"b": {_ago(1): 2, LAST: 3}, "a": {LAST: 5}, "c": {_ago(5): 7}, "d": {LAST: 1}}

    data = chart_data(counts, LAST, other_label="other")

    assert _labels(data) == ["c", "a", "b", "d"]


def test_the_quietest_queries_are_summed_into_one_last_line() -> None:
    # Nine queries, totals 90, 80, ... 10 over the window, spread over two days.
    counts = {f"q{rank}": {_ago(3): (9 - rank) * 4, _ago(1): (9 - rank) * 6} for rank in range(9)}

    data = chart_data(counts, LAST, days=5, max_series=6, other_label="прочие")

    assert _labels(data) == ["q0", "q1", "q2", "q3", "q4", "прочие"]
    rest = [counts[f"q{rank}"] for rank in range(5, 9)]
    expected_other = tuple(sum(per_day.get(day, 0) for per_day in rest) for day in data.days)
    assert data.series[-1].counts == expected_other == (0, 40, 0, 60, 0)


def test_as_many_queries_as_lines_need_no_other_line() -> None:
    data = chart_data(_flat({f"q{i}": 10 - i for i in range(6)}), LAST, other_label="other")

    assert _labels(data) == ["q0", "q1", "q2", "q3", "q4", "q5"]


def test_ties_at_the_cut_are_settled_by_label() -> None:
    counts = _flat({"ДРСМД": 5, "МАГАТЭ": 5, "АЭС Бушер": 5, "СНВ-3": 9})

    data = chart_data(counts, LAST, max_series=3, other_label="прочие")

    assert _labels(data) == ["СНВ-3", "АЭС Бушер", "прочие"]
    assert sum(data.series[-1].counts) == 10  # ДРСМД and МАГАТЭ


def test_queries_without_mentions_are_dropped_and_do_not_take_a_line() -> None:
    counts = {**_flat({"a": 3, "b": 2}), "silent": {}, "old": {_ago(30): 9}, "zero": {LAST: 0}}

    data = chart_data(counts, LAST, max_series=2, other_label="other")

    assert _labels(data) == ["a", "b"]


@pytest.mark.parametrize("counts", [{}, {"a": {}, "b": {_ago(20): 4}}])
def test_nothing_mentioned_gives_no_lines(counts: dict[str, dict[date, int]]) -> None:
    data = chart_data(counts, LAST, days=14, other_label="other")

    assert data.series == ()
    assert len(data.days) == 14


def test_long_labels_are_shortened_with_an_ellipsis() -> None:
    long = "ядерные испытания на Новой Земле и в Неваде"
    exact = "x" * MAX_LABEL
    data = chart_data(_flat({long: 3, exact: 2, "ПРО": 1}), LAST, other_label="other")

    shortened, kept, short = _labels(data)
    assert shortened.endswith("…")
    assert len(shortened) <= MAX_LABEL
    assert long.startswith(shortened.removesuffix("…"))
    assert (kept, short) == (exact, "ПРО")


@pytest.mark.parametrize(("days", "max_series"), [(0, 6), (14, 0)])
def test_an_empty_window_or_no_lines_allowed_is_refused(days: int, max_series: int) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        chart_data({}, LAST, days=days, max_series=max_series, other_label="other")


# build_figure: what is drawn


def _eight_queries() -> ChartData:
    labels = [
        "Договор СНВ-3",
        "испытание ракеты «Сармат»",
        "ядерные испытания на Новой Земле и в Неваде",
        "МАГАТЭ Запорожская АЭС",
        "ДРСМД",
        "гиперзвуковое оружие",
        "ПРО",
        "стратегические бомбардировщики",
    ]
    counts = {
        label: {_ago(back): (rank * 7 + back * 3) % 11 + 8 - rank for back in range(16)}
        for rank, label in enumerate(labels)
    }
    return chart_data(counts, LAST, other_label="прочие запросы")


def test_each_line_draws_its_series_and_the_legend_names_it() -> None:
    data = _eight_queries()

    axes = build_figure(data, title=TITLE, day_label=_ru_day).axes[0]

    lines = axes.get_lines()
    assert [np.asarray(line.get_ydata()).tolist() for line in lines] == [
        list(series.counts) for series in data.series
    ]
    assert all(np.size(line.get_xdata()) == len(data.days) for line in lines)
    legend = axes.get_legend()
    assert legend is not None
    assert [text.get_text() for text in legend.get_texts()] == _labels(data)
    assert len({line.get_color() for line in lines}) == len(lines)
    assert len({line.get_marker() for line in lines}) == len(lines)


def test_y_axis_counts_whole_mentions_from_zero() -> None:
    axes = build_figure(_eight_queries(), title=TITLE, day_label=_ru_day).axes[0]

    assert axes.get_ylim()[0] == 0
    assert all(float(tick).is_integer() for tick in axes.get_yticks())


def test_the_newest_day_is_always_named_and_labels_do_not_crowd() -> None:
    data = chart_data({"a": {LAST: 1}}, LAST, days=30, other_label="other")

    axes = build_figure(data, title=TITLE, day_label=_ru_day).axes[0]

    named = [label.get_text() for label in axes.get_xticklabels()]
    assert named[-1] == "28 нояб."
    assert 2 <= len(named) <= MAX_DAY_TICKS
    assert list(axes.get_xticks())[-1] == len(data.days) - 1


def test_a_chart_without_lines_has_no_legend() -> None:
    data = chart_data({}, LAST, other_label="other")

    axes = build_figure(data, title=TITLE, day_label=_ru_day).axes[0]

    assert axes.get_lines() == []
    assert axes.get_legend() is None


# render_chart: the PNG


@pytest.fixture(scope="module")
def chart_png() -> bytes:
    """Eight Russian queries rendered once, with any warning (a missing glyph) made an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return render_chart(_eight_queries(), title=TITLE, day_label=_ru_day)


def test_the_chart_is_a_square_png_sized_for_a_phone(chart_png: bytes) -> None:
    assert chart_png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(chart_png)) as image:
        assert image.format == "PNG"
        assert image.mode == "RGBA"
        assert image.size == (SIZE, SIZE)


def test_every_line_shows_in_its_own_colour(chart_png: bytes) -> None:
    with Image.open(io.BytesIO(chart_png)) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint32)
    # Each pixel as one 0xRRGGBB number, to compare with the palette's hex colours.
    colours = set(np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]).tolist())
    assert {int(hex_.removeprefix("#"), 16) for hex_ in PALETTE[:6]} <= colours


def test_a_missing_glyph_would_have_been_caught() -> None:
    """The warnings check above is not vacuous: a glyph DejaVu Sans lacks does warn."""
    figure = build_figure(ChartData((LAST,), ()), title="漢字", day_label=_ru_day)
    with pytest.warns(UserWarning, match="missing from font"):
        figure.canvas.draw()


def test_charts_drawn_in_parallel_threads_come_out_the_same(chart_png: bytes) -> None:
    data = _eight_queries()
    with ThreadPoolExecutor(max_workers=2) as pool:
        pngs = list(
            pool.map(lambda _: render_chart(data, title=TITLE, day_label=_ru_day), range(2))
        )
    assert pngs == [chart_png, chart_png]


def test_dollar_signs_and_backslashes_in_queries_are_drawn_as_text_not_parsed_as_tex() -> None:
    # A query such as `$x^\frac{$` made matplotlib's mathtext raise while drawing: every
    # title, label and tick is plain text.
    days = tuple(date(2026, 11, 1) + timedelta(days=n) for n in range(14))
    data = ChartData(
        days, (Series("$x^\\frac{$ OR \\", tuple(range(14))), Series("a $$ b", (1,) * 14))
    )
    figure = build_figure(data, title="Title $\\alpha$ $", day_label=lambda day: f"${day.day}")
    legend = figure.axes[0].get_legend()
    assert legend is not None
    assert [text.get_text() for text in legend.get_texts()] == ["$x^\\frac{$ OR \\", "a $$ b"]
    png = render_chart(data, title="Title $\\alpha$ $", day_label=lambda day: f"${day.day}")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
