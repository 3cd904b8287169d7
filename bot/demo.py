"""`dozor demo`: the real pipeline, offline, on bundled sample posts, printed to the terminal.

Posts are read by the jsonl source, matched, stored in a temporary SQLite database and sent
by the outbox worker — only the last hop, the Bot API, is replaced by the terminal. The sample
posts are days old, so the demo's source counts as watched since the oldest of them: like a
service that was running when they were posted, it alerts on all of them.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from datetime import UTC, datetime, time
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.delivery.outbox import OutboxWorker
from bot.delivery.terminal import TerminalSender
from bot.digest import queue_digests
from bot.ingest import Ingest, Matcher, SourceFeed
from bot.sources.jsonl import JsonlSource
from bot.storage import SqliteStorage

# Who subscribes to what in the demo: (chat id, name, queries).
DEMO_SUBSCRIBERS: list[tuple[int, str, list[str]]] = [
    (1001, "Anna, arms-control analyst", ["Oreshnik -лещина", '"INF Treaty" OR INF']),
    (1002, "Max, defence journalist", ["moratorium OR мораторий", "Iskander-M"]),
    (1003, "OSINT desk (group)", ["9M729", "Kalibr OR X-101"]),
]


def sample_posts_path() -> Path:
    return Path(str(resources.files("bot") / "samples" / "posts.jsonl"))


def oldest_date(path: Path) -> datetime | None:
    """The earliest `date` among the file's JSON lines (lines without one are skipped)."""
    dates: list[datetime] = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            try:
                date = datetime.fromisoformat(json.loads(line)["date"])
            except (ValueError, KeyError, TypeError):
                continue
            dates.append(date if date.tzinfo else date.replace(tzinfo=UTC))
    return min(dates, default=None)


async def run_demo(posts: Path | None = None, tz_name: str = "Europe/Moscow") -> int:
    """Run the demo and print alerts and digests; returns an exit status."""
    path = posts or sample_posts_path()
    tz = ZoneInfo(tz_name)
    with tempfile.TemporaryDirectory(prefix="dozor-demo-") as folder:
        storage = await SqliteStorage.open(Path(folder) / "demo.sqlite3")
        try:
            names = {chat_id: name for chat_id, name, _ in DEMO_SUBSCRIBERS}
            print("Dozor demo — subscribers and their saved queries:")
            for chat_id, name, queries in DEMO_SUBSCRIBERS:
                await storage.upsert_subscriber(chat_id, name)
                for query in queries:
                    await storage.add_subscription(chat_id, query)
                print(f"  • {name}: " + " | ".join(queries))
            matcher = Matcher(storage)
            await matcher.refresh()
            ready = asyncio.Event()
            ingest = Ingest(storage, matcher, ready)
            source = JsonlSource(str(path), follow=False)
            # Watched since its oldest post: without that, the first-read rule would store
            # the days-old samples without a single alert.
            source_id = await storage.ensure_source(
                source.spec.text, "jsonl", added_at=oldest_date(path)
            )
            await source.run(SourceFeed(ingest, storage, source_id))
            print(f"\nRead {await storage.count_posts()} posts from {path.name}; alerts follow.")

            sender = TerminalSender(names)
            worker = OutboxWorker(storage, sender, tz, ready)
            alerts = await worker.send_due()
            print(f"\n{alerts} alert(s) sent. Now the daily digest:")
            await queue_digests(storage, datetime.now(UTC), time(8, 0), tz, force=True)
            digests = await worker.send_due()
            print(f"\nDemo done: {alerts} alert(s) and {digests} digest message(s).")
        finally:
            await storage.close()
    return 0
