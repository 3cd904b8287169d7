"""The one first-read rule of every source: a source's back catalogue is stored, not alerted.

`SourceFeed` decides for every kind (telegram, tgweb, x, rss, jsonl) from a post's date and
when its source was added; the tests of each kind show it through their real parsers, these
through the jsonl source on a real file, the offline demo, and the rule itself.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.demo import run_demo
from bot.domain import Post
from bot.ingest import NEWS_BEFORE_ADDED, Ingest, Matcher, SourceFeed, is_news
from bot.sources.jsonl import JsonlSource
from bot.storage import Storage

ADDED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _post(date: datetime) -> Post:
    return Post("jsonl", "wire", "1", date, "Oreshnik")


@pytest.mark.parametrize(
    ("date", "added", "news"),
    [
        (ADDED - timedelta(hours=30), ADDED, False),  # the 30-hour-old post of the bug report
        (ADDED - NEWS_BEFORE_ADDED - timedelta(seconds=1), ADDED, False),
        (ADDED - NEWS_BEFORE_ADDED, ADDED, True),
        (ADDED - timedelta(hours=2), ADDED, True),
        (ADDED + timedelta(days=40), ADDED, True),  # read late (downtime): still news
        (ADDED - timedelta(days=400), None, True),  # an unknown source holds nothing back
    ],
)
def test_news_is_what_was_published_at_most_a_day_before_the_source_was_added(
    date: datetime, added: datetime | None, news: bool
) -> None:
    assert is_news(_post(date), added) is news


def _line(post_id: int, date: datetime, text: str) -> str:
    record = {"channel": "wire", "id": post_id, "date": date.isoformat(), "text": text}
    return json.dumps(record, ensure_ascii=False) + "\n"


async def _read(storage: Storage, path: Path, added_at: datetime) -> None:
    source = JsonlSource(str(path), follow=False)
    source_id = await storage.ensure_source(source.spec.text, "jsonl", added_at=added_at)
    matcher = Matcher(storage)
    await matcher.refresh()
    await source.run(SourceFeed(Ingest(storage, matcher, asyncio.Event()), storage, source_id))


async def _alerted(storage: Storage) -> list[str]:
    pending = await storage.pending_messages(datetime.now(UTC) + timedelta(days=1))
    return [message.post.post.post_id for message in pending if message.post]


async def test_a_new_source_stores_its_old_posts_without_alerting_them(
    storage: Storage, tmp_path: Path
) -> None:
    await storage.upsert_subscriber(7, "analyst")
    await storage.add_subscription(7, "Oreshnik")
    path = tmp_path / "posts.jsonl"
    path.write_text(
        _line(1, ADDED - timedelta(hours=30), "Oreshnik: an old report")
        + _line(2, ADDED - timedelta(hours=1), "Oreshnik: this morning"),
        encoding="utf-8",
    )
    await _read(storage, path, ADDED)
    assert await storage.count_posts() == 2
    assert await _alerted(storage) == ["2"]
    found = await storage.search_posts(["old", "report"])
    assert [stored.post.post_id for stored in found] == ["1"]  # /search still finds it


async def test_a_source_added_long_ago_alerts_on_everything_it_missed(
    storage: Storage, tmp_path: Path
) -> None:
    # Down for weeks: what was published meanwhile is old by the clock, but it is news.
    await storage.upsert_subscriber(7, "analyst")
    await storage.add_subscription(7, "Oreshnik")
    path = tmp_path / "posts.jsonl"
    path.write_text(
        _line(1, ADDED - timedelta(days=20), "Oreshnik one")
        + _line(2, ADDED - timedelta(days=10), "Oreshnik two"),
        encoding="utf-8",
    )
    await _read(storage, path, ADDED - timedelta(days=30))
    assert await _alerted(storage) == ["1", "2"]


async def test_the_demo_alerts_on_its_days_old_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text(
        _line(1, datetime(2026, 1, 10, 8, 0, tzinfo=UTC), "The Oreshnik system is on duty.")
        + _line(2, datetime(2026, 1, 20, 8, 0, tzinfo=UTC), "A 9M729 launcher was seen."),
        encoding="utf-8",
    )
    assert await run_demo(path, tz_name="UTC") == 0
    output = capsys.readouterr().out
    assert "2 alert(s) sent" in output
    assert "The Oreshnik system is on duty." in output
