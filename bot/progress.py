"""Progress of long CLI work: a live bar (rich) on a terminal, plain lines otherwise (CI,
systemd, a pipe), so logs stay readable."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

Report = Callable[[str, int, int], None]  # what, done, in all
PLAIN_STEP = 10  # percent between plain lines


@contextmanager
def progress_reporter(out: TextIO) -> Iterator[Report]:
    """A `report(what, done, total)` to call as work goes on (from any thread)."""
    with progress_printer(out, out) as (report, _):
        yield report


Say = Callable[[str], None]  # print one line of the command's own output


@contextmanager
def progress_printer(out: TextIO, err: TextIO) -> Iterator[tuple[Report, Say]]:
    """`(report, say)` for work that prints a line per item on `out`: on a terminal, a live
    bar with the lines (`say`) scrolling above it; otherwise the lines go to `out` unchanged
    and the plain progress lines to `err`, so `out` holds only the command's own lines."""
    if out.isatty():
        with _live_bar(out) as (live, console):

            def above(line: str) -> None:
                console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)

            yield live, above
        return
    with lines_only(out) as (_, say):
        yield _plain_lines(err), say


@contextmanager
def lines_only(out: TextIO) -> Iterator[tuple[Report, Say]]:
    """`progress_printer`'s pair for work too short for progress: the lines, no progress."""

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    yield (lambda what, done, total: None), say


@contextmanager
def _live_bar(out: TextIO) -> Iterator[tuple[Report, Console]]:
    with Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(file=out),
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def live(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        yield live, bar.console


def _plain_lines(out: TextIO) -> Report:
    """A line at every PLAIN_STEP percent of each piece of work."""
    shown: dict[str, int] = {}

    def plain(what: str, done: int, total: int) -> None:
        step = 100 if total == 0 else done * 100 // total // PLAIN_STEP * PLAIN_STEP
        if shown.get(what) == step:
            return
        shown[what] = step
        print(f"{what}: {done:,} of {total:,} ({step}%)", file=out, flush=True)

    return plain
