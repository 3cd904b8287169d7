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

* "executemany": the same rows with nothing else to do. After the ingest run the rows it
  stored for each post are read back (off the clock: the post, its matches, its outbox
  alerts, and whatever else refers to the post), then replayed per post in one transaction:
  the post, then ONE `executemany` per table. Replaying what was stored keeps the rows (and
  their columns) the real code's as storage changes. It is the floor for writing these rows
  one post at a time. (Ingest stages a post's matches and merges them into `matches`,
  indexed by chat, a batch at a time; the replay writes each row where it ended up, so a
  merged post's matches go straight into the indexed table.) The matches `Matcher.match`
  finds for the same posts are counted too: a warning is printed if ingest stored a
  different number (merged or staged).
* "raw": the same posts alone, one transaction each, no matches.

The database's growth per match (a subscription matching a post: one `matches` row today) is
(size after ingest - size of the posts-only baseline) / matches, each file with its WAL
checkpointed (TRUNCATE) after closing. It includes the outbox alert rows, which retention
prunes only once they are sent.

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
import functools
import gc
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ingest_live  # noqa: E402 (scenario 2: the live service under a backlog)
import loop as lagging  # noqa: E402 (benchmarks/loop.py: the event-loop probe)
import match as generated  # noqa: E402 (benchmarks/match.py: the same generated data)

from bot.domain import Post, clean_text  # noqa: E402
from bot.ingest import Ingest, Matcher  # noqa: E402
from bot.matching import Hit  # noqa: E402
from bot.storage import SqliteStorage  # noqa: E402

SEED = 20261207
SCALES = ((1_000, 2_000), (10_000, 1_000))  # (subscriptions, posts)
GOAL_GROWTH_MIB = 100  # resident memory above an idle service, 10,000 subscriptions
STARTUP_SUBSCRIPTIONS = 100_000  # scenario 3
LIVE_POSTS = 1_000  # new posts while the backlog waits (scenario 2)
QUICK_SHARE = 10  # --quick: a tenth of the posts
GOAL_SHARE = 0.25  # of the executemany rate, at 10,000 subscriptions
GOAL_RATE = {10_000: 80, 1_000: 500}  # posts/s
BEFORE_RATE = "8-9"  # posts/s at 10,000 subscriptions before this work
GOAL_STALL_MS = 50
GOAL_BYTES_PER_MATCH = 100

Row = tuple[object, ...]


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
    day_bytes_per_match: float

    @property
    def share(self) -> float:
        return self.ingest_rate / self.executemany_rate


# --- data -----------------------------------------------------------------------------------


@functools.cache
def vocabulary() -> tuple[list[generated.Term], dict[str, list[str]]]:
    """The terms and partners `make_data` draws from (built from SEED, as it does)."""
    return generated.build_vocabulary(random.Random(SEED))


def generated_texts(rng: random.Random, count: int) -> list[str]:
    """`count` more generated post texts (the same generator as `make_data`)."""
    maker = generated.PostMaker(vocabulary()[0])
    return [maker.make(rng)[0] for _ in range(count)]


def more_queries(rng: random.Random, count: int) -> list[str]:
    """`count` generated queries (the same generator as `make_data`)."""
    terms, partners = vocabulary()
    zipf = generated.Zipf(terms)
    return [generated.make_query(rng, zipf, partners).text for _ in range(count)]


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
    storage = await SqliteStorage.open(path)
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


def used_size(path: Path) -> int:
    """The bytes of the pages in use (free pages are reused before the file grows), with
    the WAL checkpointed."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages, free, size = (
            int(db.execute(f"PRAGMA {name}").fetchone()[0])
            for name in ("page_count", "freelist_count", "page_size")
        )
    return (pages - free) * size


async def operate_a_day(path: Path) -> None:
    """What a day of operation does to the rows ingest wrote: the staged matches merged
    (`Storage.merge_matches`, as every digest does first), every alert filed into the
    outbox (`Storage.file_alerts`, as the sender does), sent (marked as the sender marks
    them) and, past the grace period, pruned (`Storage.prune_finished`, as the service's
    periodic job does)."""
    storage = await SqliteStorage.open(path)
    try:
        await storage.merge_matches()  # the staged tail, as the first digest's read does
        while await storage.file_alerts(batch=5_000):
            pass
        await storage._db.execute(
            "UPDATE outbox SET sent_at = ? WHERE sent_at IS NULL", (_stamp(datetime.now(UTC)),)
        )
        later = datetime.now(UTC) + timedelta(days=1)
        await storage.prune_finished(later, later)
    finally:
        await storage.close()


def count_rows(path: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


# --- the real pipeline ------------------------------------------------------------------------


async def run_ingest(path: Path, posts: Sequence[Post]) -> tuple[float, float, list[list[Hit]]]:
    """Posts one by one through `Ingest.handle`: (seconds, longest stall in ms), and then,
    off the clock, each post's hits from the same index (what ingest should have stored)."""
    storage = await SqliteStorage.open(path)
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
class Table:
    """A table as the baselines write it: its columns less a rowid alias (a new row gets its
    own id) and, in a table that refers to posts (matches, outbox), the referring column."""

    name: str
    columns: tuple[str, ...]
    post_column: str | None = None

    @property
    def insert(self) -> str:
        marks = ", ".join("?" * len(self.columns))
        return f'INSERT INTO "{self.name}" ({", ".join(self.columns)}) VALUES ({marks})'

    def rows_of(self, db: sqlite3.Connection, post_id: int) -> list[Row]:
        """The rows that refer to the post `post_id`."""
        return db.execute(
            f'SELECT {", ".join(self.columns)} FROM "{self.name}" WHERE {self.post_column} = ?',
            (post_id,),
        ).fetchall()

    def pointing_at(self, post_id: int | None, row: Row) -> Row:
        """`row` made to refer to the post `post_id` instead."""
        at = self.columns.index(self.post_column or "")
        return (*row[:at], post_id, *row[at + 1 :])


def read_table(db: sqlite3.Connection, name: str, post_column: str | None = None) -> Table:
    info = db.execute(f'PRAGMA table_info("{name}")').fetchall()  # cid, name, type, .., pk
    keys = [row for row in info if row[5]]
    alias = keys[0][1] if len(keys) == 1 and keys[0][2].upper() == "INTEGER" else None
    return Table(name, tuple(row[1] for row in info if row[1] != alias), post_column)


def referring_tables(db: sqlite3.Connection) -> list[Table]:
    """Every table with a foreign key to posts (matches and outbox today)."""
    names = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return [
        read_table(db, name, key[3])  # id, seq, table, from, to, ...
        for name in names
        for key in db.execute(f'PRAGMA foreign_key_list("{name}")').fetchall()
        if key[2] == "posts"
    ]


@dataclass(frozen=True, slots=True)
class Written:
    """What ingest wrote for one post: the post's row, and the rows that refer to it."""

    post: Row
    rows: list[tuple[Table, list[Row]]]


def read_written(path: Path, posts: Sequence[Post]) -> tuple[Table, list[Written]]:
    """The rows ingest stored for each post, read back from its database: replayed, they
    are exactly what the real code writes, whatever its schema becomes."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        posts_table = read_table(db, "posts")
        referring = referring_tables(db)
        written: list[Written] = []
        for post in posts:
            found = db.execute(
                f"SELECT id, {', '.join(posts_table.columns)} FROM posts"
                " WHERE source = ? AND channel = ? AND post_id = ?",
                (post.source, post.channel, post.post_id),
            ).fetchone()
            rows = [(other, other.rows_of(db, found[0])) for other in referring]
            written.append(Written(tuple(found[1:]), [(t, r) for t, r in rows if r]))
    return posts_table, written


def insert_directly(path: Path, posts_table: Table, written: Sequence[Written]) -> float:
    """Seconds to write each post in a transaction of its own, with the rows that refer to
    it in one executemany per table, on a plain connection with `Storage.open`'s PRAGMAs."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        for pragma in (
            "journal_mode = WAL",
            "synchronous = NORMAL",
            "foreign_keys = ON",
            "cache_size = -16384",
            "wal_autocheckpoint = 10000",
            "journal_size_limit = 67108864",
        ):
            db.execute(f"PRAGMA {pragma}")
        start = time.perf_counter()
        for item in written:
            db.execute("BEGIN IMMEDIATE")
            post_id = db.execute(posts_table.insert, item.post).lastrowid
            for other, rows in item.rows:
                db.executemany(other.insert, [other.pointing_at(post_id, row) for row in rows])
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
    names = ("ingest", "many", "raw", "day")
    paths = {name: folder / f"subs{count}-{name}.sqlite3" for name in names}
    for path in paths.values():
        shutil.copy(base, path)

    took, stall, hits = await run_ingest(paths["ingest"], posts)
    posts_table, written = read_written(paths["ingest"], posts)
    many_took = insert_directly(paths["many"], posts_table, written)
    raw_took = insert_directly(paths["raw"], posts_table, [Written(w.post, []) for w in written])

    matches = sum(len(post_hits) for post_hits in hits)
    stored = count_rows(paths["ingest"], "matches") + count_rows(paths["ingest"], "staged_matches")
    if stored != matches:
        print(f"  warning: ingest stored {stored:,} matches rows; the index finds {matches:,}")
    raw_size = settled_size(paths["raw"])
    growth = (settled_size(paths["ingest"]) - raw_size) / max(matches, 1)
    many_growth = (settled_size(paths["many"]) - raw_size) / max(matches, 1)
    shutil.copy(paths["ingest"], paths["day"])
    await operate_a_day(paths["day"])
    day_growth = (used_size(paths["day"]) - used_size(paths["raw"])) / max(matches, 1)
    return Result(
        subscriptions=count,
        posts=len(posts),
        matches=matches,
        ingest_rate=len(posts) / took,
        executemany_rate=len(posts) / many_took,
        raw_rate=len(posts) / raw_took,
        stall_ms=stall,
        bytes_per_match=growth,
        executemany_bytes_per_match=many_growth,
        day_bytes_per_match=day_growth,
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
        ok = small.ingest_rate >= GOAL_RATE[1_000]
        print(
            f"  1,000 subscriptions: ingest >= {GOAL_RATE[1_000]} posts/s:"
            f" {small.ingest_rate:,.0f} posts/s -> {verdict(ok)}"
        )
    stall = max(r.stall_ms for r in results)
    print(
        f"  longest event-loop stall <= {GOAL_STALL_MS} ms: {stall:.1f} ms ->"
        f" {verdict(stall <= GOAL_STALL_MS)}"
    )
    print(
        f"  database growth over a day <= {GOAL_BYTES_PER_MATCH} bytes per match (the alerts"
        " filed, sent and pruned past their grace period; pages in use):"
    )
    for r in results:
        ok = r.day_bytes_per_match <= GOAL_BYTES_PER_MATCH
        print(
            f"    {r.subscriptions:,} subscriptions: {r.day_bytes_per_match:.0f} bytes ->"
            f" {verdict(ok)} (right after ingest, alerts waiting: {r.bytes_per_match:.0f};"
            f" the executemany baseline's rows: {r.executemany_bytes_per_match:.0f})"
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
        big = next(r for r in results if r.subscriptions == 10_000)
        step = time.perf_counter()
        print("scenario 2: `dozor run` with 10,000 subscriptions and a backlog of alerts")
        result = await ingest_live.live(
            Path(folder),
            Path(folder) / "subs10000.sqlite3",
            generated_texts(rng, 400),  # the backlog: ~160 of them are enough
            generated_texts(rng, LIVE_POSTS // (QUICK_SHARE if quick else 1)),
        )
        share = result.ingest_rate / big.ingest_rate
        print(
            f"  {result.backlog:,} alerts waiting, {result.posts:,} new posts: ingest"
            f" {result.ingest_rate:,.0f} posts/s = {share:.0%} of the in-process"
            f" {big.ingest_rate:,.0f} (goal >= {ingest_live.GOAL_SHARE:.0%}) ->"
            f" {verdict(share >= ingest_live.GOAL_SHARE)}; sending meanwhile"
            f" {result.send_rate:.1f} messages/s (goal >= {ingest_live.GOAL_SEND_RATE:.0f}) ->"
            f" {verdict(result.send_rate >= ingest_live.GOAL_SEND_RATE)}, 429s"
            f" {result.throttled}; resident memory {result.rss_mib:,.0f} MiB;"
            f" measured in {time.perf_counter() - step:.0f} s"
        )
        step = time.perf_counter()
        print("scenario 3: `dozor run` started on 100,000 stored subscriptions, /start sent")
        empty, many = Path(folder) / "empty.sqlite3", Path(folder) / "subs100000.sqlite3"
        await build_database(empty, [])
        await build_database(many, more_queries(rng, STARTUP_SUBSCRIPTIONS))
        idle_s, idle_mib = await ingest_live.startup(Path(folder), empty)
        took_s, took_mib = await ingest_live.startup(Path(folder), many)
        growth = took_mib - idle_mib
        print(
            f"  reply to /start {took_s:.1f} s after the spawn (goal <="
            f" {ingest_live.GOAL_STARTUP_S:.0f} s) ->"
            f" {verdict(took_s <= ingest_live.GOAL_STARTUP_S)};"
            f" with no subscriptions {idle_s:.1f} s. Resident memory {took_mib:,.0f} MiB, no"
            f" subscriptions {idle_mib:,.0f} MiB: growth {growth:,.0f} MiB (goal <="
            f" {ingest_live.GOAL_STARTUP_GROWTH_MIB}) ->"
            f" {verdict(growth <= ingest_live.GOAL_STARTUP_GROWTH_MIB)}; measured in"
            f" {time.perf_counter() - step:.0f} s"
        )
        live_growth = result.rss_mib - idle_mib
        print(
            f"  scenario 2's service (10,000 subscriptions, {result.backlog:,} alerts waiting,"
            f" {result.posts:,} posts just stored) held {live_growth:,.0f} MiB"
            f" more than the idle one (goal <= {GOAL_GROWTH_MIB} MiB, stated after 100,000"
            f" posts) -> {verdict(live_growth <= GOAL_GROWTH_MIB)}"
        )
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
