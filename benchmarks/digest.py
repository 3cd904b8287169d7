"""Preparing the daily digest for 10,000 subscribers, against one query per subscriber.

What is measured. 10,000 subscribers, each with 3 generated queries (as in
`benchmarks/match.py`: Zipf-ranked arms-control terms in realistic query shapes), and 20
matches each over the last day, on 3,000 generated posts (Russian, Ukrainian and English
news, ~60 words) of which a fifth are reposts of another post with emoji, a link and a
channel signature added (so folding has stories to fold). Every subscriber is due. The time
for `queue_digests` to prepare and queue every digest: read the posts, fold near-duplicate
stories, group by query, bold the matched words, split into messages, read the 14-day chart
counts and queue the messages and charts; and the longest time the event loop was held,
from a 5 ms ticker running beside it.

Baseline, same run, on a copy of the same database: the naive loop — for each subscriber
one query for its matches, one for its chart counts, the digest rendered with nothing shared
between subscribers (the same rendering, folding and highlighting), and one transaction to
queue it.

Goals: all 10,000 digests prepared in under a tenth of the baseline's time, and the event
loop never held for more than 50 ms at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import loop as lagging  # noqa: E402 (benchmarks/loop.py: the event-loop probe)
import match as generated  # noqa: E402 (benchmarks/match.py: the same generated data)

from bot.app import settle_heap  # noqa: E402
from bot.digest import (  # noqa: E402
    DigestCache,
    chart_for,
    chart_window,
    next_slot,
    queue_digests,
    render_digest,
)
from bot.domain import Subscription  # noqa: E402
from bot.i18n import Catalog  # noqa: E402
from bot.ingest import Matcher  # noqa: E402
from bot.matching import QueryIndex  # noqa: E402
from bot.storage import QueuedDigest, SqliteStorage, Storage  # noqa: E402

SEED = 20261129
SUBSCRIBERS = 10_000
QUERIES_EACH = 3
MATCHES_EACH = 20
POSTS = 3_000
REPOST_SHARE = 0.2
GOAL_RATIO = 10
GOAL_STALL_MS = 50
NOW = datetime.now(UTC).replace(microsecond=0)
AT = clock(8, 0)
EMOJI = ("⚡️", "🚀", "❗️", "🇷🇺", "🔥")
SIGNATURES = ("Подписаться | @milinfolive", "Военная хроника", "Source: Reuters", "@rybar")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def make_data(rng: random.Random) -> tuple[list[str], list[list[str]]]:
    """The posts, and each subscriber's queries."""
    terms, partners = generated.build_vocabulary(rng)
    zipf = generated.Zipf(terms)
    maker = generated.PostMaker(terms)
    posts: list[str] = []
    while len(posts) < POSTS:
        if posts and rng.random() < REPOST_SHARE:
            original = rng.choice(posts)
            posts.append(
                f"{rng.choice(EMOJI)} {original} https://t.me/c/{rng.randint(1, 999)}"
                f"\n\n{rng.choice(SIGNATURES)}"
            )
            continue
        text, _ = maker.make(rng)
        posts.append(text)
    queries: list[list[str]] = []
    for _ in range(SUBSCRIBERS):
        chosen: dict[str, None] = {}
        while len(chosen) < QUERIES_EACH:
            chosen[generated.make_query(rng, zipf, partners).text] = None
        queries.append(list(chosen))
    return posts, queries


def build_database(path: Path, posts: list[str], queries: list[list[str]]) -> int:
    """Store posts, subscribers, subscriptions and MATCHES_EACH real matches per subscriber
    (the posts their queries match, topped up with any post when there are too few);
    returns the number of matches."""
    rng = random.Random(SEED + 1)
    subscriptions = [
        Subscription(chat * QUERIES_EACH + n + 1, chat + 1, query, NOW)
        for chat, chat_queries in enumerate(queries)
        for n, query in enumerate(chat_queries)
    ]
    index = QueryIndex(subscriptions)
    matched: dict[int, list[tuple[int, int, str]]] = {}
    for post_id, text in enumerate(posts, 1):
        for hit in index.match(text):
            found = matched.setdefault(hit.subscription.chat_id, [])
            found.append((post_id, hit.subscription.id, hit.subscription.query))
    dates = [NOW - timedelta(seconds=rng.randint(60, 86_000)) for _ in posts]
    channels = generated.CHANNELS
    match_rows = []
    for chat in range(1, SUBSCRIBERS + 1):
        found = matched.get(chat, [])
        rng.shuffle(found)
        chosen = {post_id: (sub, query) for post_id, sub, query in found[:MATCHES_EACH]}
        while len(chosen) < MATCHES_EACH:  # few matches: any posts, under the first query
            first = (chat - 1) * QUERIES_EACH + 1
            chosen.setdefault(rng.randint(1, len(posts)), (first, queries[chat - 1][0]))
        for post_id, (sub, query) in chosen.items():
            found_at = dates[post_id - 1] + timedelta(seconds=30)
            match_rows.append((post_id, sub, chat, query, _stamp(found_at)))
    with contextlib.closing(sqlite3.connect(path)) as db:
        stamp = _stamp(NOW)
        db.executemany(
            "INSERT INTO posts (id, source, channel, post_id, date, text, url, stored_at,"
            " updated_at, channel_title) VALUES (?, 'tgweb', ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    n,
                    channels[n % len(channels)],
                    str(n),
                    _stamp(dates[n - 1]),
                    text,
                    f"https://t.me/{channels[n % len(channels)]}/{n}",
                    stamp,
                    stamp,
                    channels[n % len(channels)].title(),
                )
                for n, text in enumerate(posts, 1)
            ],
        )
        db.executemany(
            "INSERT INTO subscribers (chat_id, name, active, created_at, last_digest_at,"
            " next_digest_at) VALUES (?, ?, 1, ?, ?, ?)",
            [
                (
                    chat,
                    f"user{chat}",
                    _stamp(NOW - timedelta(days=30)),
                    _stamp(NOW - timedelta(days=1)),
                    _stamp(NOW - timedelta(minutes=1)),
                )
                for chat in range(1, SUBSCRIBERS + 1)
            ],
        )
        db.executemany(
            "INSERT INTO subscriptions (id, chat_id, query, created_at) VALUES (?, ?, ?, ?)",
            [(s.id, s.chat_id, s.query, _stamp(NOW)) for s in subscriptions],
        )
        db.executemany(
            "INSERT OR IGNORE INTO matches (post_id, subscription_id, chat_id, query,"
            " created_at) VALUES (?, ?, ?, ?, ?)",
            match_rows,
        )
        db.commit()
    return len(match_rows)


async def with_lag_probe(work: Callable[[], Awaitable[int]]) -> tuple[float, float, int]:
    """Run `work` beside loop.py's 5 ms ticker: (seconds, longest stall in ms, its result)."""
    results: list[int] = []

    async def run() -> None:
        results.append(await work())

    took, stall, _p99 = await lagging.lag_during(run)
    return took, stall, results[0]


async def naive(storage: Storage, catalog: Catalog, matcher: Matcher) -> int:
    """One query per subscriber for its posts, one for its chart, one transaction each."""
    queued = 0
    t = catalog.texts("ru")
    for subscriber in await storage.active_subscribers():
        chat = subscriber.chat_id
        since = subscriber.last_digest_at or NOW - timedelta(days=1)
        entries = await storage.digest_entries(chat, since, NOW)
        _, read_from, read_to = chart_window(NOW, UTC)
        counts = await storage.mention_counts(
            {chat: (0, None, 0)}, read_from, read_to, digest_queries=True
        )
        if not entries:
            continue
        order = (await storage.query_order([chat])).get(chat)
        parts = render_digest(
            entries,
            since,
            NOW,
            t,
            UTC,
            queries=order,
            cache=DigestCache(matcher),  # nothing shared between subscribers
        )
        chart = chart_for(counts.get(chat, {}), t, NOW, UTC)
        await storage.queue_digests(
            [QueuedDigest(chat, tuple(parts), NOW, chart, next_slot(NOW, AT, UTC))]
        )
        queued += 1
    return queued


async def main() -> int:
    started = time.perf_counter()
    rng = random.Random(SEED)
    posts, queries = make_data(rng)
    catalog = Catalog()
    with tempfile.TemporaryDirectory() as folder:
        ours_path = Path(folder) / "ours.sqlite3"
        storage = await SqliteStorage.open(ours_path)  # the schema, migrated
        await storage.close()
        matches = build_database(ours_path, posts, queries)
        naive_path = Path(folder) / "naive.sqlite3"
        shutil.copy(ours_path, naive_path)
        print(
            f"{SUBSCRIBERS:,} subscribers x {QUERIES_EACH} queries, {len(posts):,} posts"
            f" ({REPOST_SHARE:.0%} reposts), {matches:,} matches"
            f" ({matches / SUBSCRIBERS:.0f} each); built in {time.perf_counter() - started:.0f} s"
        )

        # As in the service: the matcher holds every query compiled, then the heap is
        # settled (bot.app.settle_heap) before the scheduler starts.
        storage = await SqliteStorage.open(ours_path)
        matcher = Matcher(storage)
        await matcher.refresh()
        settle_heap()
        try:
            took, stall, count = await with_lag_probe(
                lambda: queue_digests(storage, NOW, AT, UTC, catalog=catalog, index=matcher)
            )
            messages = (await storage.outbox_counts())["pending"]
        finally:
            await storage.close()
        print(
            f"queue_digests: {count:,} digests ({messages:,} messages and charts) in"
            f" {took:.1f} s; longest event-loop stall {stall:.1f} ms"
        )

        storage = await SqliteStorage.open(naive_path)
        try:
            naive_took, naive_stall, naive_count = await with_lag_probe(
                lambda: naive(storage, catalog, matcher)
            )
        finally:
            await storage.close()
        print(
            f"baseline (one query and one transaction per subscriber): {naive_count:,}"
            f" digests in {naive_took:.1f} s; longest stall {naive_stall:.1f} ms"
        )
    ratio = naive_took / took
    ok_ratio = ratio >= GOAL_RATIO
    ok_stall = stall <= GOAL_STALL_MS
    print(
        f"goal >= {GOAL_RATIO}x faster than the baseline: {ratio:.1f}x -> "
        f"{'met' if ok_ratio else 'NOT met'}"
    )
    print(
        f"goal event loop never held > {GOAL_STALL_MS} ms: {stall:.1f} ms -> "
        f"{'met' if ok_stall else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
