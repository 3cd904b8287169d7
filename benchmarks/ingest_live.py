"""Scenario 2 of benchmarks/ingest.py: the live service under a backlog.

`dozor run` in a child process, with 10,000 subscriptions (the same generated queries as
scenario 1) and 100,000 alerts already waiting in its outbox (stored by ingesting generated
posts beforehand, then filed into the chats' queues), sending to the stand-in Bot API of
benchmarks/delivery.py (tests/botapi.py's FakeBotAPI enforcing Telegram's limits, 50 ms per
request). Once it sends at its pace, new posts are appended to its JSONL source at once;
measured: how fast it stores them (posts/s, from the append to the last one in the
database, read through a read-only connection every 20 ms) and how many messages it sends
meanwhile (messages/s).

Goal: ingest at least half the in-process rate of scenario 1 at 10,000 subscriptions (same
run), while sending at the full paced rate (>= 27 messages/s of the 30/s Telegram allows).
The child's resident memory (VmRSS) when the last post is stored is reported too.

Scenario 3, startup: `dozor run` on a database holding 100,000 subscriptions (generated
queries), `/start` pushed to the stand-in Bot API as the process is spawned; measured: the
seconds from the spawn to the reply, and the process's resident memory then. Baseline, same
run: the same on a database with no subscriptions (its memory is what the libraries and an
idle service take). Goal: the reply within 15 s; memory growth above the baseline <= 300 MiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import delivery as paced  # benchmarks/delivery.py: the stand-in Bot API, paced

from bot.domain import Post
from bot.ingest import Ingest, Matcher
from bot.storage import SqliteStorage

ROOT = Path(__file__).resolve().parents[1]
BACKLOG = 100_000  # alerts waiting when the measured posts arrive
GOAL_SHARE = 0.5  # of the in-process rate
GOAL_SEND_RATE = 27.0  # messages/s
GOAL_STARTUP_S = 15.0
GOAL_STARTUP_GROWTH_MIB = 300
USER = 777
BOUND = 600.0  # seconds: a stuck service fails the run instead of hanging it


@dataclass(frozen=True, slots=True)
class LiveResult:
    backlog: int
    posts: int
    ingest_rate: float
    send_rate: float
    throttled: int  # 429s the stand-in answered
    rss_mib: float  # the child's resident memory when the last post was stored


def resident_mib(pid: int) -> float:
    """A process's resident memory (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _env(db: Path, source: Path, base_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "BOT_TOKEN": paced.TOKEN,
        "TELEGRAM_API_BASE": base_url,
        "DOZOR_DB": str(db),
        "SOURCES": f"jsonl:{source}",
        "DIGEST_TIME": (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M"),
        "LOG_LEVEL": "INFO",
    }


async def _stop(child: asyncio.subprocess.Process) -> None:
    child.terminate()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(child.wait(), 60)
    if child.returncode is None:
        child.kill()
        await child.wait()


async def startup(folder: Path, db: Path) -> tuple[float, float]:
    """Seconds from spawning `dozor run` on `db` to its reply to /start, and its resident
    memory (MiB) then."""
    source = folder / "startup.jsonl"
    source.write_text("", encoding="utf-8")
    api = await paced._server()
    log = folder / f"{db.stem}.log"
    try:
        with log.open("wb") as output:
            start = time.perf_counter()
            child = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "bot.cli", "run"),
                env=_env(db, source, api.base_url),
                cwd=folder,
                stdout=output,
                stderr=output,
            )
        api.push_message(USER, "/start", user_id=USER)
        try:
            await api.wait_for_sent(1, chat_id=USER, timeout=BOUND)
        except Exception:
            print(log.read_text(encoding="utf-8", errors="replace")[-3000:])
            raise
        took = time.perf_counter() - start
        memory = resident_mib(child.pid)
        await _stop(child)
    finally:
        await api.stop()
    return took, memory


def _stored(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
        return int(c.execute("SELECT COUNT(*) FROM posts").fetchone()[0])


async def _until(what: str, condition: object) -> None:
    deadline = time.perf_counter() + BOUND
    while not condition():  # type: ignore[operator]
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _fill_backlog(db: Path, texts: Sequence[str]) -> tuple[int, int]:
    """Ingest generated posts until BACKLOG alerts wait, file them into the outbox as the
    sender would; returns (posts used, alerts waiting)."""
    storage = await SqliteStorage.open(db)
    matcher = Matcher(storage)
    try:
        await matcher.refresh()
        ingest = Ingest(storage, matcher, asyncio.Event())
        waiting = used = 0
        for number, text in enumerate(texts):
            if waiting >= BACKLOG:
                break
            post = Post("jsonl", "backlog", str(number), datetime.now(UTC), text, None)
            waiting += (await ingest.handle(post)).alerts_queued
            used += 1
        while await storage.file_alerts(batch=5_000):
            pass
    finally:
        await storage.close()
    return used, waiting


def _record(number: int, text: str) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=1)  # news: after the source was added
    record = {"channel": "live", "id": number, "date": moment.isoformat(), "text": text}
    return json.dumps(record, ensure_ascii=False) + "\n"


async def live(
    folder: Path, base: Path, backlog_texts: Sequence[str], texts: Sequence[str]
) -> LiveResult:
    """`base`: a database with the subscribers and their queries, copied first."""
    db = folder / "live.sqlite3"
    shutil.copy(base, db)
    used, waiting = await _fill_backlog(db, backlog_texts)
    source = folder / "live.jsonl"
    source.write_text("", encoding="utf-8")
    api = await paced._server()
    log = folder / "live.log"
    env = _env(db, source, api.base_url)
    with log.open("wb") as output:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "run",
            env=env,
            cwd=folder,
            stdout=output,
            stderr=output,
        )
    try:
        await _until("the service sending", lambda: len(api.sent) >= 100)
        start_sent, start = len(api.sent), time.perf_counter()
        with source.open("a", encoding="utf-8") as handle:
            handle.writelines(_record(n, text) for n, text in enumerate(texts))
        target = used + len(texts)
        await _until("every post stored", lambda: _stored(db) >= target)
        took = time.perf_counter() - start
        sent = len(api.sent) - start_sent
        memory = resident_mib(child.pid)
    except RuntimeError:
        print(log.read_text(encoding="utf-8", errors="replace")[-3000:])
        raise
    finally:
        await _stop(child)
        await api.stop()
    return LiveResult(waiting, len(texts), len(texts) / took, sent / took, api.limit_hits, memory)
