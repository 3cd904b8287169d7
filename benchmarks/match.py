"""Matching throughput: Dozor's subscription index against the naive regex-per-subscription loop.

Prints posts per second at several subscription counts, with the baseline measured in the same
run on the same posts (absolute numbers vary between machines; the ratio is what to compare).
"""

from __future__ import annotations

import random
import re
import time
from datetime import UTC, datetime

from bot.domain import Subscription
from bot.matching import QueryIndex

WORDS = (
    "ракета пуск комплекс учения дивизион бригада полигон удар ночью источники сообщают"
    " missile launch treaty talks deployment brigade convoy imagery analysts officials said"
    " Орешник Искандер Калибр Кинжал мораторий РСМД Oreshnik Iskander INF moratorium 9М729"
).split()
NAMES = [f"term{n}" for n in range(200_000)]


def make_posts(count: int, rng: random.Random) -> list[str]:
    """~60 words: common vocabulary plus a few names from a long tail, as real posts have."""
    posts = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(56)] + rng.sample(NAMES[:20_000], 4)
        rng.shuffle(words)
        posts.append(" ".join(words))
    return posts


def make_queries(count: int, rng: random.Random) -> list[str]:
    queries = []
    for n in range(count):
        shape = n % 3
        if shape == 0:
            queries.append(f"{rng.choice(NAMES)} OR {rng.choice(NAMES)}")
        elif shape == 1:
            queries.append(f'"{rng.choice(NAMES)} {rng.choice(WORDS)}"')
        else:
            queries.append(f"{rng.choice(NAMES)} {rng.choice(WORDS)}")
    return queries


def naive_pattern(query: str) -> re.Pattern[str]:
    """What keyword bots do: one regex per subscription (alternatives of whole words)."""
    parts = [p.strip('"') for p in query.split(" OR ")]
    return re.compile("|".join(rf"\b{re.escape(p)}\b" for p in parts), re.IGNORECASE)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def main() -> None:
    rng = random.Random(7)
    posts = make_posts(2000, rng)
    now = datetime.now(UTC)
    print(f"{'subscriptions':>13} {'index posts/s':>14} {'naive posts/s':>14} {'ratio':>8}")
    for count in (100, 1_000, 10_000):
        queries = make_queries(count, rng)
        index = QueryIndex(Subscription(n, n, q, now) for n, q in enumerate(queries))
        start = time.perf_counter()
        for post in posts:
            index.match(post)
        ours = rate(len(posts), time.perf_counter() - start)
        patterns = [naive_pattern(q) for q in queries]
        sample = posts[: max(20, 20_000 // count)]
        start = time.perf_counter()
        for post in sample:
            for pattern in patterns:
                pattern.search(post)
        naive = rate(len(sample), time.perf_counter() - start)
        print(f"{count:>13,} {ours:>14,.0f} {naive:>14,.0f} {ours / naive:>7.0f}x")


if __name__ == "__main__":
    main()
