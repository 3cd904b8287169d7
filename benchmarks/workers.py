"""Several workers on one PostgreSQL database: ingest throughput with 1, 2 and 3 workers.

What is measured. `dozor run` processes on one PostgreSQL database (`DOZOR_BENCH_POSTGRES`,
default postgresql://127.0.0.1:5432/test: a database of its own is created there for each
run and dropped after), with 10,000 subscribers (benchmarks/match.py's generated queries,
~560 matches a post: the matching-heavy load) and six followed files as sources, which the
workers share. Once every source is read, 600 generated posts are appended across the files at
once; measured: posts stored per second (from the append to the last one in the database),
the messages the leader sent meanwhile to the stand-in Bot API of benchmarks/delivery.py
(Telegram's limits with exact windows, 50 ms per request) and the 429s it answered.

Baseline, same run: one `dozor run` on SQLite (the same subscribers and posts).

Goals: 2 workers ingest at least 1.6x as fast as 1 worker on PostgreSQL, on this 2-core
machine (where the PostgreSQL server shares the two cores); delivery at >= 27 messages/s with
no 429 across the workers.

`--quick` appends a fifth of the posts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import delivery as paced  # noqa: E402 (benchmarks/delivery.py: the paced stand-in Bot API)
import ingest as scale  # noqa: E402 (benchmarks/ingest.py: data and the SQLite base)
import ingest_live as live  # noqa: E402 (benchmarks/ingest_live.py: spawning `dozor run`)
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from bot.storage.transfer import migrate  # noqa: E402

SERVER = os.environ.get("DOZOR_BENCH_POSTGRES", "postgresql://127.0.0.1:5432/test")
SUBSCRIPTIONS = 10_000
SOURCES = 6
POSTS = 600
GOAL_SCALE = 1.6
GOAL_SEND_RATE = 27.0
BOUND = 600.0
LOOK_EVERY = 0.05  # seconds between counts of the posts stored


@dataclass(frozen=True, slots=True)
class Run:
    engine: str
    workers: int
    rate: float  # posts stored per second
    send_rate: float  # messages per second meanwhile
    throttled: int  # 429s
    server_cpu: float  # ms of CPU per post used by PostgreSQL's processes (a local server)
    workers_cpu: float  # ms of CPU per post used by the workers


def _database(name: str) -> str:
    parts = urlsplit(SERVER)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


class Stored:
    """Counts the posts stored, off the event loop (where the stand-in Bot API answers) and
    over one connection: a connection per look would fork a server process 50 times a
    second, counted against the workers."""

    def __init__(self, url: str | None, sqlite_path: Path) -> None:
        self._sqlite_path = sqlite_path
        self._conn = None if url is None else psycopg.connect(url, autocommit=True)

    def _count(self) -> int:
        if self._conn is None:
            return live._stored(self._sqlite_path)
        row = self._conn.execute("SELECT COUNT(*) FROM posts").fetchone()
        return int(row[0]) if row is not None else 0

    async def until(self, wanted: int) -> None:
        deadline = time.perf_counter() + BOUND
        while await asyncio.to_thread(self._count) < wanted:
            if time.perf_counter() > deadline:
                raise RuntimeError("timed out waiting for every post stored")
            await asyncio.sleep(LOOK_EVERY)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_cpu() -> float:
    """CPU seconds used by the PostgreSQL server's processes on this machine (0 if the
    server runs elsewhere: then only the workers' share is known)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name = (entry / "comm").read_text(encoding="ascii", errors="replace")
            except OSError:
                continue
            if name.startswith("postgres"):
                total += _cpu_of(int(entry.name))
    return total


def _leading(logs: list[Path]) -> bool:
    return any(
        "leading: sending" in log.read_text(encoding="utf-8", errors="replace")
        for log in logs
        if log.exists()
    )


def _watching(logs: list[Path]) -> int:
    found = 0
    for log in logs:
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        found += len(set(re.findall(r"watching (jsonl:\S+)", text)))
    return found


async def measure(
    folder: Path, base: Path, texts: list[str], *, workers: int, postgres: bool
) -> Run:
    """`workers` services on a fresh copy of the subscribers; the posts appended at once."""
    run = folder / f"{'pg' if postgres else 'sqlite'}{workers}"
    run.mkdir()
    db = run / "dozor.sqlite3"
    shutil.copy(base, db)
    url: str | None = None
    name = f"dozor_bench_{os.getpid()}_{workers}"
    admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=5) if postgres else None
    if admin is not None:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = _database(name)
        await migrate(db, url, lambda *step: None)
    files = [run / f"feed{n}.jsonl" for n in range(SOURCES)]
    for path in files:
        path.write_text("", encoding="utf-8")
    api = await paced._server()
    children: list[asyncio.subprocess.Process] = []
    logs = [run / f"worker{n}.log" for n in range(workers)]
    try:
        env = live._env(db, files[0], api.base_url)
        env["SOURCES"] = ",".join(f"jsonl:{path}" for path in files)
        if url is not None:
            env["DATABASE_URL"] = url
        for log in logs:
            with log.open("wb") as output:
                children.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "bot.cli",
                        "run",
                        env=env,
                        cwd=run,
                        stdout=output,
                        stderr=output,
                    )
                )
        await live._until("every source read", lambda: _watching(logs) >= SOURCES)
        # Measured from when a leader sends (a new one waits out its handover first).
        await live._until("a leader", lambda: _leading(logs))
        stored = Stored(url, db)
        try:
            server_before = _server_cpu()
            workers_before = sum(_cpu_of(child.pid) for child in children)
            start_sent, start = len(api.sent), time.perf_counter()
            for number, text in enumerate(texts):
                with files[number % SOURCES].open("a", encoding="utf-8") as handle:
                    handle.write(live._record(number, text))
            await stored.until(len(texts))
            server_cpu = _server_cpu() - server_before
            workers_cpu = sum(_cpu_of(child.pid) for child in children) - workers_before
        finally:
            stored.close()
        took = time.perf_counter() - start
        sent = len(api.sent) - start_sent
    except RuntimeError:
        for log in logs:
            print(log.read_text(encoding="utf-8", errors="replace")[-2000:])
        raise
    finally:
        for child in children:
            await live._stop(child)
        await api.stop()
        if admin is not None:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            admin.close()
    return Run(
        "PostgreSQL" if postgres else "SQLite",
        workers,
        len(texts) / took,
        sent / took,
        api.limit_hits,
        1000 * server_cpu / len(texts),
        1000 * workers_cpu / len(texts),
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the posts")
    quick = parser.parse_args().quick
    try:
        psycopg.connect(SERVER, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        print(f"no PostgreSQL server at {SERVER} ({exc}): skipped")
        return 0
    started = time.perf_counter()
    rng = random.Random(scale.SEED)
    queries, texts = scale.make_data(rng, SUBSCRIPTIONS, POSTS // (5 if quick else 1))
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="dozor-workers-") as folder:
        base = Path(folder) / "subscribers.sqlite3"
        await scale.build_database(base, queries)
        for workers, postgres in ((1, False), (1, True), (2, True), (3, True)):
            step = time.perf_counter()
            result = await measure(Path(folder), base, texts, workers=workers, postgres=postgres)
            runs.append(result)
            print(
                f"  {result.engine} x {workers}: {result.rate:,.1f} posts/s, sending"
                f" {result.send_rate:.1f} messages/s, 429s {result.throttled}; CPU a post:"
                f" server {result.server_cpu:.1f} ms, workers {result.workers_cpu:.1f} ms"
                f" (measured in {time.perf_counter() - step:.0f} s)"
            )
    one = next(r for r in runs if r.engine == "PostgreSQL" and r.workers == 1)
    two = next(r for r in runs if r.engine == "PostgreSQL" and r.workers == 2)
    sqlite = runs[0]
    print(
        f"{SUBSCRIPTIONS:,} subscriptions, {len(texts):,} posts over {SOURCES} sources;"
        f" baseline (same run) one worker on SQLite: {sqlite.rate:,.1f} posts/s"
    )
    scaled = two.rate / one.rate
    # All the CPU a post needs (server and worker, as two workers use it), against the cores
    # there are: no number of workers goes past this on one machine.
    cores = os.cpu_count() or 1
    bound = 1000 * cores / (two.server_cpu + two.workers_cpu) if two.server_cpu else None
    if bound is not None:
        print(
            f"this machine's ceiling: {cores} cores / {two.server_cpu + two.workers_cpu:.1f} ms"
            f" of CPU a post = {bound:,.0f} posts/s = {bound / one.rate:.2f}x one worker"
            " (server and workers on the same cores)"
        )
    print(
        f"goal: 2 workers >= {GOAL_SCALE}x one on PostgreSQL: {scaled:.2f}x"
        f" ({two.rate:,.1f} vs {one.rate:,.1f} posts/s) -> {verdict(scaled >= GOAL_SCALE)}"
    )
    pg = [r for r in runs if r.engine == "PostgreSQL"]
    slowest = min(r.send_rate for r in pg)
    hits = sum(r.throttled for r in pg)
    print(
        f"goal: delivery >= {GOAL_SEND_RATE:.0f} messages/s with no 429 across workers:"
        f" slowest {slowest:.1f} messages/s, {hits} 429s ->"
        f" {verdict(slowest >= GOAL_SEND_RATE and hits == 0)}"
    )
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
