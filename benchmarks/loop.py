"""How long matching and /search hold the event loop, with the worst queries Dozor accepts.

While the work runs, a ticker task asks to wake every 5 ms and records how late it wakes; the
longest delay is the longest time nothing else (a reply, a send, another chat's command)
could run. Goal: at most ~50 ms (ARCHITECTURE.md, invariant 9), a few ms typically.

1. Ingest. 50 posts of 100,000 characters (the longest stored) go through the real `Ingest`
   (matching on the matcher's worker thread, storing in SQLite) against 1,000 ordinary
   subscriptions plus 50 with the costliest regexes the query limits accept.
   Baseline, same run: the same ingest with matching done on the event loop, as before.
2. Search. `Searches.advance` from the /search handler over 1,000 stored long posts with the
   costliest accepted regex that matches none of them (every post scanned, until the 5 s limit).
   Baseline, same run: the same QueryMatcher over the same posts on the event loop.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.domain import Post  # noqa: E402
from bot.ingest import Ingest, Matcher  # noqa: E402
from bot.matching import Hit, QueryMatcher  # noqa: E402
from bot.storage import SqliteStorage, Storage  # noqa: E402
from handlers.search import PAGE_SIZE, Searches  # noqa: E402

TICK = 0.005
POSTS = 50
STORED = 1_000
ORDINARY = 1_000
COSTLY = 50
WORDS = "Орешник ракета INF 9М729 Искандер-М мораторий the missile test launch р мм".split()
# Accepted by the query limits (RE2 program <= 1,000) and among the slowest found for them.
COSTLY_REGEX = "/(.{0,25}р)(.{0,25}м)Ж/"


def _text(n: int, length: int = 20_000, ending: str = "") -> str:
    words = [WORDS[(n * 7 + i * 13) % len(WORDS)] for i in range(length // 5)]
    return f"{n} " + " ".join(words)[:length] + ending


class OnTheLoop(Matcher):
    """The baseline: the same index, matched on the event loop as before the change."""

    def __init__(self, storage: Storage, shared: Matcher) -> None:
        super().__init__(storage)
        self._shared = shared

    async def find(self, text: str) -> list[Hit]:
        return self._shared.match(text)


async def lag_during(work: Callable[[], Awaitable[object]]) -> tuple[float, float, float]:
    """Run `work` with a 5 ms ticker beside it: (seconds taken, max lag ms, p99 lag ms).
    (Also the event-loop probe of `benchmarks/digest.py`.)"""
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(TICK)
            lags.append(time.perf_counter() - start - TICK)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    start = time.perf_counter()
    await work()
    took = time.perf_counter() - start
    done.set()
    await task
    lags.sort()
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else 0.0
    return took, lags[-1] * 1000 if lags else 0.0, p99 * 1000


async def ingest(folder: Path) -> None:
    print(f"1. ingest: {POSTS} posts of 100,000 characters, {ORDINARY:,} + {COSTLY} subscriptions")
    storage = await SqliteStorage.open(folder / "ingest.sqlite3")
    matcher = Matcher(storage)
    try:
        for chat in range(1, ORDINARY + COSTLY + 1):
            await storage.upsert_subscriber(chat, f"user{chat}")
            query = COSTLY_REGEX if chat > ORDINARY else f"{WORDS[chat % 8]} слово{chat}"
            await storage.add_subscription(chat, query)
        await matcher.refresh()
        ingest = Ingest(storage, matcher, asyncio.Event())
        now = datetime.now(UTC)
        # Every other post ends so that the costly regexes must really be run on it.
        posts = [
            Post("bench", "c", str(n), now, _text(n, 100_000, ending=" р м Ж" if n % 2 else ""))
            for n in range(POSTS)
        ]

        async def off_loop() -> None:
            for post in posts:
                await ingest.handle(post)

        before = Ingest(storage, OnTheLoop(storage, matcher), asyncio.Event())
        later = [replace(post, post_id=f"b{post.post_id}") for post in posts]

        async def on_loop() -> None:  # the baseline: the same ingest, matching on the loop
            for post in later:
                await before.handle(post)

        runs = (("Dozor (matcher thread)", off_loop), ("baseline (on the loop)", on_loop))
        for label, work in runs:
            took, worst, p99 = await lag_during(work)
            print(
                f"  {label:<26} {POSTS / took:6.1f} posts/s; loop lag max {worst:6.1f} ms,"
                f" p99 {p99:5.1f} ms (goal max <= 50)"
            )
    finally:
        matcher.close()
        await storage.close()


async def search_lag(folder: Path) -> None:
    print(f"2. /search: {STORED:,} stored posts of 20,000 characters, query {COSTLY_REGEX}")
    storage = await SqliteStorage.open(folder / "search.sqlite3")
    searches = Searches()
    try:
        now = datetime.now(UTC)
        for n in range(STORED):
            await storage.save_post(
                Post("bench", "c", str(n), now - timedelta(seconds=n), _text(n)), []
            )
        matcher = QueryMatcher(COSTLY_REGEX)
        result: list[tuple[int, bool]] = []

        async def dozor() -> None:
            hunt = await searches.prepare(COSTLY_REGEX)
            finished = await searches.advance(storage, hunt, PAGE_SIZE + 1)
            result.append((hunt.looked, finished))

        async def baseline() -> None:  # the old /search: pages from the DB, matched on the loop
            for offset in range(0, STORED, 250):
                for post in await storage.recent_posts(250, offset):
                    matcher.spans(post.post.text)

        took, worst, p99 = await lag_during(dozor)
        looked, finished = result[0]
        state = "finished" if finished else "stopped at the time limit"
        print(
            f"  {'Dozor (worker thread, 5 s)':<26} {took:5.1f} s, {looked:,} posts, {state};"
            f" loop lag max {worst:6.1f} ms, p99 {p99:5.1f} ms (goal max <= 50)"
        )
        took, worst, p99 = await lag_during(baseline)
        print(
            f"  {'baseline (on the loop)':<26} {took:5.1f} s, {STORED:,} posts, finished;"
            f" loop lag max {worst:6.1f} ms, p99 {p99:5.1f} ms"
        )
    finally:
        searches.close()
        await storage.close()


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="dozor-loop-") as folder:
        await ingest(Path(folder))
        await search_lag(Path(folder))


if __name__ == "__main__":
    asyncio.run(main())
