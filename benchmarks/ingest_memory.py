"""Ingest at scale, memory: what ingest holds after 100,000 posts at 10,000 subscriptions.

What is measured. A fresh child process (so that nothing the parent built counts) imports
the service (`bot.app`, with every library it loads) and loads the word-form dictionaries
the index uses (`FormExpander.shared()`): its resident memory then is the baseline, "the
libraries". It then opens a database holding 10,000 subscribers, each with one generated
query (benchmarks/ingest.py's data: match.py's realistic query generator), builds the index
as the service does at start (`Matcher.refresh`, then `bot.app.settle_heap`), and sends
100,000 posts one by one through `Ingest.handle` (match on the matcher's thread, store the
post, its matches and its alerts in SQLite). The texts are ingest.py's 2,000 generated posts
in turn, each under a post id of its own (a new post each time: matched and stored, ~560
matches each). Resident memory (VmRSS) is sampled every 10,000 posts.

Goal (the "Ingest at scale" issue): growth above the libraries at most 100 MiB after
100,000 posts. `--quick` sends 10,000 posts (the goal is then indicative). The 100,000
subscriptions goal (<= 300 MiB) is scenario 3 of benchmarks/ingest.py.

The database grows to a few GB in a temporary folder (56 million matches); it is removed at
the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ingest as scale  # noqa: E402 (benchmarks/ingest.py: the same data and database)
from ingest_live import resident_mib  # noqa: E402

SUBSCRIPTIONS = 10_000
POSTS = 100_000
TEXTS = 2_000  # generated texts, sent in turn
SAMPLE_EVERY = 10_000
GOAL_GROWTH_MIB = 100
QUICK_SHARE = 10


def _say(**figures: object) -> None:
    print(json.dumps(figures), flush=True)


async def child(db: Path, posts: int) -> None:
    """In the child: report resident memory at each stage as one JSON line."""
    import os

    import bot.app  # noqa: F401 (the service's modules and their libraries)
    from bot.app import settle_heap
    from bot.domain import Post
    from bot.ingest import Ingest, Matcher
    from bot.matching.forms import FormExpander
    from bot.storage import SqliteStorage

    rng = random.Random(scale.SEED)
    _queries, texts = scale.make_data(rng, SUBSCRIPTIONS, TEXTS)
    FormExpander.shared()
    me = os.getpid()
    _say(stage="libraries", posts=0, rss=resident_mib(me))
    storage = await SqliteStorage.open(db)
    matcher = Matcher(storage)
    try:
        await matcher.refresh()
        ingest = Ingest(storage, matcher, asyncio.Event())
        settle_heap()
        _say(stage="index", posts=0, rss=resident_mib(me))
        now = datetime.now(UTC)
        channels = scale.generated.CHANNELS
        started = time.perf_counter()
        for n in range(posts):
            post = Post(
                source="bench",
                channel=channels[n % len(channels)],
                post_id=str(n),
                date=now,
                text=texts[n % len(texts)],
                url=None,
            )
            await ingest.handle(post)
            if (n + 1) % SAMPLE_EVERY == 0 or n + 1 == posts:
                took = time.perf_counter() - started
                _say(stage="posts", posts=n + 1, rss=resident_mib(me), rate=(n + 1) / took)
    finally:
        matcher.close()
        await storage.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the posts")
    parser.add_argument("--child", nargs=2, metavar=("DB", "POSTS"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        asyncio.run(child(Path(arguments.child[0]), int(arguments.child[1])))
        return 0
    posts = POSTS // QUICK_SHARE if arguments.quick else POSTS
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dozor-memory-") as folder:
        db = Path(folder) / "memory.sqlite3"
        queries, _texts = scale.make_data(random.Random(scale.SEED), SUBSCRIPTIONS, 0)
        asyncio.run(scale.build_database(db, queries))
        print(
            f"{SUBSCRIPTIONS:,} subscriptions, {posts:,} posts through Ingest.handle in a"
            " child process; resident memory:"
        )
        figures: dict[str, float] = {}
        run = subprocess.Popen(
            [sys.executable, __file__, "--child", str(db), str(posts)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert run.stdout is not None
        for line in run.stdout:
            sample = json.loads(line)
            figures[sample["stage"]] = sample["rss"]
            growth = sample["rss"] - figures["libraries"]
            rate = f", {sample['rate']:,.0f} posts/s so far" if "rate" in sample else ""
            print(
                f"  {sample['stage']:>9} {sample['posts']:>7,} posts: {sample['rss']:,.0f} MiB"
                f" ({growth:+,.0f} above the libraries){rate}",
                flush=True,
            )
        if run.wait() != 0:
            print("the child failed")
            return 1
    growth = figures["posts"] - figures["libraries"]
    index = figures["index"] - figures["libraries"]
    verdict = "met" if growth <= GOAL_GROWTH_MIB else "NOT met"
    print(
        f"goal{' (--quick: indicative)' if arguments.quick else ''}: growth above the"
        f" libraries <= {GOAL_GROWTH_MIB} MiB after {posts:,} posts: {growth:,.0f} MiB"
        f" (the index and storage {index:,.0f} MiB of it) -> {verdict}"
    )
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
