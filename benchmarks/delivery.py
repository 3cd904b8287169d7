"""Delivery at Telegram's limits: throughput, latency and a `kill -9`, against a stand-in Bot API.

The server is `tests/botapi.py`'s FakeBotAPI in its Telegram-limits mode with exact windows
(no grace for jitter): a 31st accepted message within a second overall, a 2nd to one private
chat within a second, or a 21st to a group within a minute is answered 429 with `retry_after`,
as Telegram does; every answer takes 50 ms (a network round trip). Dozor's real outbox worker,
sender and pacer run against it with the aiogram Bot and a real SQLite file.

1. Fan-out. 500 subscribers, 4 posts matching all of them: 2,000 alerts queued at once.
   Reported: messages per second (goal >= 27, 90% of Telegram's 30/s), alerts per second, 429s
   received (goal 0), alerts lost and duplicated (goal 0 and 0). Bursts for one subscriber are
   sent as one message, so 2,000 alerts make ~500 messages.
   Baseline, same run and server: the same 2,000 alerts sent the common way — one message per
   alert, as fast as 32 concurrent requests go, waiting `retry_after` when refused.
2. Latency. 1,000 subscribers with their own queries; 40 posts, one every 500 ms, each
   matching 10 of them, go through ingest (matching, storing, queueing). Reported: p50 and p99
   of the time from a post being handed to ingest to its first alert reaching the server (goal:
   p99 < 200 ms). Baseline, same run: the same worker without the wake-up from ingest, finding
   alerts by polling the outbox (every `IDLE_CHECK` s, the previous design's safety net).
3. Crash. The fan-out again in a child process, killed with SIGKILL when about half the
   messages are through, then started again to finish. Reported: alerts lost (goal 0) and
   duplicated (goal: at most the alerts in messages in flight at the kill).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiogram import Bot  # noqa: E402
from aiogram.client.session.aiohttp import AiohttpSession  # noqa: E402
from aiogram.client.telegram import TelegramAPIServer  # noqa: E402
from aiogram.exceptions import TelegramRetryAfter  # noqa: E402

from bot.delivery import outbox as outbox_module  # noqa: E402
from bot.delivery.outbox import OutboxWorker  # noqa: E402
from bot.delivery.sender import TelegramSender  # noqa: E402
from bot.domain import Post, Span  # noqa: E402
from bot.ingest import Ingest, Matcher  # noqa: E402
from bot.storage import SqliteStorage, Storage  # noqa: E402
from bot.storage.sqlite import MatchRecord  # noqa: E402
from tests.botapi import FakeBotAPI  # noqa: E402

TOKEN = "123456789:AAbenchmarkbenchmarkbenchmarkbench"
RTT = 0.05
SUBSCRIBERS = 500
POSTS = 4
LATENCY_SUBSCRIBERS = 1_000
LATENCY_POSTS = 40
LATENCY_MATCHES = 10
LATENCY_SPACING = 0.5
_LINK = re.compile(r'href="https://t\.me/bench/(\d+)"')


def _bot(api: FakeBotAPI) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))
    return Bot(TOKEN, session=session)


async def _server() -> FakeBotAPI:
    api = FakeBotAPI(token=TOKEN)
    await api.start()
    api.enforce_limits(tolerance=0.0)  # exact windows, as Telegram counts
    api.set_send_latency(RTT)
    return api


async def _fan_out_queue(storage: Storage) -> None:
    """500 subscribers of `Oreshnik`, 4 matching posts: 2,000 alerts in the outbox."""
    records = []
    for chat_id in range(1, SUBSCRIBERS + 1):
        await storage.upsert_subscriber(chat_id, f"user{chat_id}")
        subscription = await storage.add_subscription(chat_id, "Oreshnik")
        assert subscription is not None
        records.append(MatchRecord(subscription.id, chat_id, "Oreshnik", (Span(0, 8),)))
    now = datetime.now(UTC)
    for number in range(1, POSTS + 1):
        text = f"Oreshnik: report {number} " + "about deployments and tests " * 20
        post = Post("bench", "bench", str(number), now, text, f"https://t.me/bench/{number}")
        await storage.save_post(post, records)


def _alerts(api: FakeBotAPI) -> Counter[tuple[int, str]]:
    """(chat, post) pairs delivered, counted: every alert's link in every accepted message."""
    return Counter((m.chat_id, link) for m in api.sent for link in _LINK.findall(m.text))


def _report_delivery(
    label: str, api: FakeBotAPI, seconds: float, expected: int, *, goals: bool = False
) -> tuple[float, int, int]:
    delivered = _alerts(api)
    lost = expected - len(delivered)
    duplicated = sum(count - 1 for count in delivered.values())
    rate = len(api.sent) / seconds
    goal = " (goal 0)" if goals else ""
    print(
        f"  {label:<34} {len(api.sent):>5} messages in {seconds:5.1f} s = {rate:5.1f} msg/s"
        f"{' (goal >= 27)' if goals else ''} ({sum(delivered.values()) / seconds:6.1f}"
        f" alerts/s); 429s {api.limit_hits}{goal}; lost {lost}{goal};"
        f" duplicated {duplicated}{goal}"
    )
    return rate, lost, duplicated


async def fan_out(workdir: Path) -> tuple[float, int, int, int]:
    print(f"1. fan-out: {POSTS * SUBSCRIBERS:,} alerts to {SUBSCRIBERS} subscribers")
    storage = await SqliteStorage.open(workdir / "fanout.sqlite3")
    await _fan_out_queue(storage)
    expected = POSTS * SUBSCRIBERS

    # Baseline: one message per alert, unpaced, 32 at a time, waiting when refused.
    api = await _server()
    bot = _bot(api)
    rows = await storage.pending_messages(datetime.now(UTC), limit=expected)
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for row in rows:
        assert row.post is not None
        queue.put_nowait((row.chat_id, f'Alert <a href="{row.post.post.url}">post</a>'))

    async def blast() -> None:
        while not queue.empty():
            chat_id, text = queue.get_nowait()
            while True:
                try:
                    await bot.send_message(chat_id, text, parse_mode="HTML")
                    break
                except TelegramRetryAfter as exc:
                    await asyncio.sleep(exc.retry_after)

    started = time.perf_counter()
    await asyncio.gather(*(blast() for _ in range(32)))
    seconds = time.perf_counter() - started
    _report_delivery("baseline (unpaced, 1 per alert)", api, seconds, expected)
    await bot.session.close()
    await api.stop()

    # Dozor.
    api = await _server()
    bot = _bot(api)
    worker = OutboxWorker(storage, TelegramSender(bot), UTC, asyncio.Event())
    started = time.perf_counter()
    await worker.send_due()
    seconds = time.perf_counter() - started
    label = "Dozor (paced, bursts batched)"
    rate, lost, duplicated = _report_delivery(label, api, seconds, expected, goals=True)
    hits = api.limit_hits
    await bot.session.close()
    await api.stop()
    await storage.close()
    return rate, hits, lost, duplicated


async def _latency_run(workdir: Path, name: str, wake: bool) -> tuple[list[float], int]:
    """Delays (ms) from each post handed to ingest to its first alert; and the 429s."""
    storage = await SqliteStorage.open(workdir / f"{name}.sqlite3")
    for chat_id in range(1, LATENCY_SUBSCRIBERS + 1):
        await storage.upsert_subscriber(chat_id, f"user{chat_id}")
        await storage.add_subscription(chat_id, f"term{(chat_id - 1) // LATENCY_MATCHES}")
    matcher = Matcher(storage)
    await matcher.refresh()
    ready = asyncio.Event()
    ingest = Ingest(storage, matcher, ready if wake else asyncio.Event())
    api = await _server()
    bot = _bot(api)
    worker = OutboxWorker(storage, TelegramSender(bot), UTC, ready)
    task = asyncio.create_task(worker.run())
    handed: dict[str, float] = {}
    try:
        for number in range(LATENCY_POSTS):
            text = f"Report on term{number} and the moratorium"
            post = Post("bench", "bench", str(number), datetime.now(UTC), text)
            handed[str(number)] = time.monotonic()
            await ingest.handle(post)
            await asyncio.sleep(LATENCY_SPACING)
        with contextlib.suppress(AssertionError):  # a shortfall shows as fewer posts below
            await api.wait_for_sent(LATENCY_POSTS * LATENCY_MATCHES, timeout=30)
    finally:
        worker.stop()
        await task
        await bot.session.close()
        await api.stop()
        await storage.close()
    first: dict[str, float] = {}
    for message in api.sent:
        found = re.search(r"term(\d+)", message.text)
        if found and found.group(1) not in first:
            first[found.group(1)] = message.accepted_at
    delays = [(first[key] - handed[key]) * 1000 for key in sorted(first, key=int)]
    return delays, api.limit_hits


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def latency(workdir: Path) -> float:
    print(
        f"2. latency: {LATENCY_SUBSCRIBERS:,} subscribers, {LATENCY_POSTS} posts each matching"
        f" {LATENCY_MATCHES}, post handed to ingest -> first alert at the server"
    )
    results = {}
    for name, wake in (("baseline (outbox polled)", False), ("Dozor (woken by ingest)", True)):
        delays, hits = await _latency_run(workdir, name.split()[0], wake)
        p50, p99 = statistics.median(delays), _percentile(delays, 0.99)
        print(
            f"  {name:<34} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   ({len(delays)} posts;"
            f" 429s {hits})"
        )
        results[name] = p99
    return results["Dozor (woken by ingest)"]


async def _child(db: str, base_url: str) -> None:
    """The crash run's worker process: drain the outbox, as `dozor run` would."""
    storage = await SqliteStorage.open(db)
    session = AiohttpSession(api=TelegramAPIServer.from_base(base_url))
    bot = Bot(TOKEN, session=session)
    worker = OutboxWorker(storage, TelegramSender(bot), UTC, asyncio.Event())
    await worker.send_due()
    await bot.session.close()
    await storage.close()


async def crash(workdir: Path) -> tuple[int, int, int]:
    print("3. kill -9 halfway through the fan-out, then restart")
    db = workdir / "crash.sqlite3"
    storage = await SqliteStorage.open(db)
    await _fan_out_queue(storage)
    await storage.close()
    expected = POSTS * SUBSCRIBERS
    api = await _server()
    command = [sys.executable, __file__, "--child", str(db), api.base_url]
    child = await asyncio.create_subprocess_exec(*command, cwd=ROOT)
    await api.wait_for_sent(SUBSCRIBERS // 2, timeout=120)
    in_flight = api.in_flight
    # Messages already accepted whose answer is still on its way are in flight too.
    in_flight_alerts = in_flight * POSTS
    child.send_signal(signal.SIGKILL)
    await child.wait()
    at_kill = len(api.sent)
    child = await asyncio.create_subprocess_exec(*command, cwd=ROOT)
    await child.wait()
    delivered = _alerts(api)
    lost = expected - len(delivered)
    duplicated = sum(count - 1 for count in delivered.values())
    print(
        f"  killed after {at_kill} of ~{SUBSCRIBERS} messages with {in_flight} request(s) in"
        f" flight (<= {in_flight_alerts} alerts); after the restart: lost {lost},"
        f" duplicated {duplicated} alert(s); 429s {api.limit_hits}"
    )
    await api.stop()
    return lost, duplicated, in_flight_alerts


async def main() -> int:
    outbox_module.log.setLevel("ERROR")  # 429 warnings of the baseline would drown the report
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        rate, hits, lost, duplicated = await fan_out(workdir)
        p99 = await latency(workdir)
        crash_lost, crash_dup, in_flight_alerts = await crash(workdir)
    goals = [
        (f"fan-out >= 27 msg/s: {rate:.1f}", rate >= 27),
        (f"fan-out 429s = 0: {hits}", hits == 0),
        (f"fan-out lost 0, duplicated 0: {lost}, {duplicated}", lost == 0 and duplicated == 0),
        (f"latency p99 < 200 ms: {p99:.1f} ms", p99 < 200),
        (f"kill -9 lost 0: {crash_lost}", crash_lost == 0),
        (
            f"kill -9 duplicated <= in flight: {crash_dup} <= {in_flight_alerts}",
            crash_dup <= in_flight_alerts,
        ),
    ]
    print("goals: " + "; ".join(f"{text} {'met' if ok else 'MISSED'}" for text, ok in goals))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("DB", "BASE_URL"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_child(*arguments.child))
        os._exit(0)
    sys.exit(asyncio.run(main()))
