"""Ingest at scale: the real pipeline, post by post, against 1,000 and 10,000 subscriptions.

What is measured. One generated query per subscriber (`benchmarks/match.py`'s `make_query`:
Zipf-ranked arms-control terms in realistic query shapes, so at 10,000 subscriptions a post
naming a popular term matches hundreds of them) and generated news posts (match.py's
`PostMaker`: Russian, Ukrainian and English, ~60 words). The posts go one by one through
`Ingest.handle` on a fresh SQLite file opened with `Storage.open`, with the index built by
`Matcher.refresh` as at service start: clean, match on the matcher's thread, store the post,
its matches and its alerts. Reported: posts per second, the mean matches per post, and the
longest time the event loop was held (benchmarks/loop.py's 5 ms ticker beside it).

Baselines, same run, each on a fresh copy of the same database (same subscribers), written
through a plain `sqlite3` connection with the PRAGMAs `Storage.open` sets:

* "executemany": the same rows with nothing else to do. The matches are worked out before
  the clock starts (`Matcher.match`, the same index), then per post one transaction: the post,
  ONE `executemany` for its match rows and ONE for its outbox alerts (the columns and values
  `Storage.save_post` writes). It is the floor for writing these rows one post at a time.
* "raw": the same posts alone, one transaction each, no matches.

The database's growth per match is (size after ingest - size of the posts-only baseline) /
match rows, each file with its WAL checkpointed (TRUNCATE) after closing. It includes the
outbox alert rows, which retention prunes only once they are sent.

Goals: at 10,000 subscriptions ingest >= 25% of the executemany rate and >= 80 posts/s (10x
the 8-9 posts/s measured before the "Ingest at scale" work); at 1,000 subscriptions >= 500
posts/s; the event loop never held > 50 ms; growth <= 100 bytes per match (informational).

`--quick` runs a tenth of the posts at the same subscription counts (a smoke run: the rates
are noisier, and the goals are printed as indicative).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import loop as lagging  # noqa: E402 (benchmarks/loop.py: the event-loop probe)
import match as generated  # noqa: E402 (benchmarks/match.py: the same generated data)

from bot.domain import Post, clean_text  # noqa: E402
from bot.ingest import Ingest, Matcher  # noqa: E402
from bot.matching import Hit  # noqa: E402
from bot.storage import Storage  # noqa: E402

SEED = 20261207
SCALES = ((1_000, 2_000), (10_000, 1_000))  # (subscriptions, posts)
QUICK_SHARE = 10  # --quick: a tenth of the posts
GOAL_SHARE = 0.25  # of the executemany rate, at 10,000 subscriptions
GOAL_RATE = {10_000: 80, 1_000: 500}  # posts/s
BEFORE_RATE = "8-9"  # posts/s at 10,000 subscriptions before this work
GOAL_STALL_MS = 50
GOAL_BYTES_PER_MATCH = 100

# What `Storage.save_post` writes for a new post, a match and an alert.
INSERT_POST = (
    "INSERT INTO posts (source, channel, post_id, date, text, url, edited, forwarded_from,"
    " views, media_count, source_id, stored_at, updated_at, channel_title)"
    " VALUES (?, ?, ?, ?, ?, ?, 0, NULL, NULL, 0, NULL, ?, ?, NULL)"
)
INSERT_MATCH = (
    "INSERT OR IGNORE INTO matches (post_id, subscription_id, chat_id, query, created_at)"
    " VALUES (?, ?, ?, ?, ?)"
)
INSERT_ALERT = (
    "INSERT OR IGNORE INTO outbox (kind, chat_id, post_id, queries, spans, created_at,"
    " next_attempt_at) VALUES ('alert', ?, ?, ?, ?, ?, ?)"
)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class Result:
    """One scale's figures."""

    subscriptions: int
    posts: int
    matches: int
    ingest_rate: float
    executemany_rate: float
    raw_rate: float
    stall_ms: float
    bytes_per_match: float
    executemany_bytes_per_match: float

    @property
    def share(self) -> float:
        return self.ingest_rate / self.executemany_rate


# --- data -----------------------------------------------------------------------------------


def make_data(rng: random.Random, queries: int, posts: int) -> tuple[list[str], list[str]]:
    """`queries` generated queries (one per subscriber) and `posts` generated post texts."""
    terms, partners = generated.build_vocabulary(rng)
    zipf = generated.Zipf(terms)
    texts = [generated.make_query(rng, zipf, partners).text for _ in range(queries)]
    maker = generated.PostMaker(terms)
    return texts, [maker.make(rng)[0] for _ in range(posts)]


async def build_database(path: Path, queries: Sequence[str]) -> None:
    """The migrated schema, then subscriber n+1 with `queries[n]`, in one executemany each
    on a plain connection (the public API would take a transaction per row)."""
    storage = await Storage.open(path)
    await storage.close()
    stamp = _stamp(datetime.now(UTC))
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executemany(
            "INSERT INTO subscribers (chat_id, name, active, created_at) VALUES (?, ?, 1, ?)",
            [(chat, f"user{chat}", stamp) for chat in range(1, len(queries) + 1)],
        )
        db.executemany(
            "INSERT INTO subscriptions (id, chat_id, query, created_at) VALUES (?, ?, ?, ?)",
            [(n, n, query, stamp) for n, query in enumerate(queries, 1)],
        )
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def settled_size(path: Path) -> int:
    """The file's bytes with its WAL checkpointed (TRUNCATE), plus whatever WAL is left."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def count_rows(path: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


# --- the real pipeline ------------------------------------------------------------------------


async def run_ingest(path: Path, posts: Sequence[Post]) -> tuple[float, float, list[list[Hit]]]:
    """Posts one by one through `Ingest.handle`: (seconds, longest stall in ms), and then,
    off the clock, each post's hits from the same index (for the executemany baseline)."""
    storage = await Storage.open(path)
    matcher = Matcher(storage)
    try:
        await matcher.refresh()
        ingest = Ingest(storage, matcher, asyncio.Event())
        # As the service does once started (bot.app.settle_heap): the index is taken out of
        # the collector's full passes, which would otherwise walk it while posts come in.
        gc.collect()
        gc.freeze()

        async def work() -> None:
            for post in posts:
                await ingest.handle(post)

        took, stall, _p99 = await lagging.lag_during(work)
        hits = [matcher.match(clean_text(post.text)) for post in posts]
    finally:
        matcher.close()
        await storage.close()
        gc.unfreeze()
    return took, stall, hits


# --- baselines -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rows:
    """One post's rows, prepared before the clock starts: (subscription, chat, query) per
    match, and (chat, queries JSON, spans JSON) per alert."""

    post: Post
    matches: list[tuple[int, int, str]]
    alerts: list[tuple[int, str, str]]


def prepare_rows(post: Post, hits: Sequence[Hit]) -> Rows:
    """As `Storage.save_post` builds them: one alert per chat, naming its matched queries,
    with the sorted distinct spans of all of them."""
    by_chat: dict[int, list[Hit]] = {}
    for hit in hits:
        by_chat.setdefault(hit.subscription.chat_id, []).append(hit)
    alerts = [
        (
            chat,
            json.dumps([hit.subscription.query for hit in chat_hits], ensure_ascii=False),
            json.dumps(sorted({(s.start, s.end) for hit in chat_hits for s in hit.spans})),
        )
        for chat, chat_hits in by_chat.items()
    ]
    matches = [(h.subscription.id, h.subscription.chat_id, h.subscription.query) for h in hits]
    return Rows(post, matches, alerts)


def insert_directly(path: Path, prepared: Sequence[Rows]) -> float:
    """Seconds to write each post (and its rows, if any) in a transaction of its own."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON"):
            db.execute(f"PRAGMA {pragma}")
        start = time.perf_counter()
        for rows in prepared:
            post = rows.post
            now = _stamp(datetime.now(UTC))
            db.execute("BEGIN IMMEDIATE")
            cursor = db.execute(
                INSERT_POST,
                (post.source, post.channel, post.post_id, _stamp(post.date), post.text,
                 post.url, now, now),
            )  # fmt: skip
            post_id = cursor.lastrowid
            if rows.matches:
                db.executemany(
                    INSERT_MATCH, [(post_id, sub, chat, q, now) for sub, chat, q in rows.matches]
                )
                db.executemany(
                    INSERT_ALERT,
                    [(chat, post_id, qs, spans, now, now) for chat, qs, spans in rows.alerts],
                )
            db.execute("COMMIT")
        return time.perf_counter() - start


# --- one scale ---------------------------------------------------------------------------------


async def measure(
    folder: Path, queries: Sequence[str], texts: Sequence[str], now: datetime
) -> Result:
    count = len(queries)
    channels = generated.CHANNELS
    posts = [
        Post(
            source="bench",
            channel=channels[n % len(channels)],
            post_id=str(n),
            date=now,
            text=text,
            url=None,
        )
        for n, text in enumerate(texts)
    ]
    base = folder / f"subs{count}.sqlite3"
    await build_database(base, queries)
    paths = {name: folder / f"subs{count}-{name}.sqlite3" for name in ("ingest", "many", "raw")}
    for path in paths.values():
        shutil.copy(base, path)

    took, stall, hits = await run_ingest(paths["ingest"], posts)
    # The stored text is the cleaned one: the baselines store the same.
    cleaned = [Post(p.source, p.channel, p.post_id, p.date, clean_text(p.text)) for p in posts]
    many_took = insert_directly(
        paths["many"], [prepare_rows(p, h) for p, h in zip(cleaned, hits, strict=True)]
    )
    raw_took = insert_directly(paths["raw"], [Rows(p, [], []) for p in cleaned])

    matches = sum(len(post_hits) for post_hits in hits)
    stored = count_rows(paths["ingest"], "matches")
    if stored != matches:
        print(f"  note: ingest stored {stored:,} match rows, the index gives {matches:,}")
    raw_size = settled_size(paths["raw"])
    growth = (settled_size(paths["ingest"]) - raw_size) / max(stored, 1)
    many_growth = (settled_size(paths["many"]) - raw_size) / max(matches, 1)
    return Result(
        subscriptions=count,
        posts=len(posts),
        matches=stored,
        ingest_rate=len(posts) / took,
        executemany_rate=len(posts) / many_took,
        raw_rate=len(posts) / raw_took,
        stall_ms=stall,
        bytes_per_match=growth,
        executemany_bytes_per_match=many_growth,
    )


# --- report ------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(results: Sequence[Result], quick: bool) -> None:
    header = (
        "subscriptions",
        "matches/post",
        "ingest posts/s",
        "executemany posts/s",
        "raw posts/s",
        "ingest % of executemany",
        "longest stall ms",
    )
    widths = [len(title) for title in header]
    print(" | ".join(header))
    for r in results:
        cells = (
            f"{r.subscriptions:,}",
            f"{r.matches / r.posts:.1f}",
            f"{r.ingest_rate:,.0f}",
            f"{r.executemany_rate:,.0f}",
            f"{r.raw_rate:,.0f}",
            f"{r.share:.0%}",
            f"{r.stall_ms:.1f}",
        )
        print(" | ".join(cell.rjust(width) for cell, width in zip(cells, widths, strict=True)))

    by_count = {r.subscriptions: r for r in results}
    print("goals" + (" (--quick: few posts, indicative only)" if quick else "") + ":")
    big = by_count.get(10_000)
    if big is not None:
        print(
            f"  10,000 subscriptions: ingest >= {GOAL_SHARE:.0%} of the executemany rate:"
            f" {big.share:.0%} -> {verdict(big.share >= GOAL_SHARE)}"
        )
        print(
            f"  10,000 subscriptions: ingest >= {GOAL_RATE[10_000]} posts/s (10x the"
            f" {BEFORE_RATE} before): {big.ingest_rate:,.0f} posts/s ->"
            f" {verdict(big.ingest_rate >= GOAL_RATE[10_000])}"
        )
    small = by_count.get(1_000)
    if small is not None:
        print(
            f"  1,000 subscriptions: ingest >= {GOAL_RATE[1_000]} posts/s:"
            f" {small.ingest_rate:,.0f} posts/s -> {verdict(small.ingest_rate >= GOAL_RATE[1_000])}"
        )
    stall = max(r.stall_ms for r in results)
    print(
        f"  longest event-loop stall <= {GOAL_STALL_MS} ms: {stall:.1f} ms ->"
        f" {verdict(stall <= GOAL_STALL_MS)}"
    )
    for r in results:
        print(
            f"  growth per match at {r.subscriptions:,} subscriptions <= {GOAL_BYTES_PER_MATCH}"
            f" bytes (informational; includes the outbox alert rows not yet pruned):"
            f" {r.bytes_per_match:.0f} bytes -> {verdict(r.bytes_per_match <= GOAL_BYTES_PER_MATCH)}"
            f" (executemany baseline: {r.executemany_bytes_per_match:.0f} bytes)"
        )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the posts")
    quick = parser.parse_args().quick
    scales = [(subs, posts // QUICK_SHARE if quick else posts) for subs, posts in SCALES]

    started = time.perf_counter()
    rng = random.Random(SEED)
    queries, texts = make_data(
        rng, max(subs for subs, _ in scales), max(posts for _, posts in scales)
    )
    print(
        f"{len(queries):,} generated queries (one per subscriber), {len(texts):,} generated"
        f" posts; made in {time.perf_counter() - started:.0f} s"
    )
    now = datetime.now(UTC)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="dozor-ingest-") as folder:
        for subs, posts in scales:
            step = time.perf_counter()
            results.append(await measure(Path(folder), queries[:subs], texts[:posts], now))
            print(
                f"  {subs:,} subscriptions x {posts:,} posts measured in"
                f" {time.perf_counter() - step:.0f} s"
            )
    report(results, quick)
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
