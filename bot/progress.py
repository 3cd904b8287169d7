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
    if out.isatty():
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

            yield live
        return
    shown: dict[str, int] = {}

    def plain(what: str, done: int, total: int) -> None:
        step = 100 if total == 0 else done * 100 // total // PLAIN_STEP * PLAIN_STEP
        if shown.get(what) == step:
            return
        shown[what] = step
        print(f"{what}: {done:,} of {total:,} ({step}%)", file=out, flush=True)

    yield plain
