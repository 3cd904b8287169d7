"""The jsonl source against a real file and a real SQLite store: cursor, restarts, bad lines."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from bot.sources.jsonl import MAX_LINE_BYTES, JsonlSource, parse_line
from bot.storage import Storage
from tests.feeds import RecordingFeed


def _line(post_id: int, text: str = "Oreshnik", channel: str = "milinfo") -> str:
    record = {
        "channel": channel,
        "id": post_id,
        "date": "2026-11-20T09:00:00+03:00",
        "text": text,
        "url": f"https://t.me/{channel}/{post_id}",
    }
    return json.dumps(record, ensure_ascii=False) + "\n"


async def _read_once(storage: Storage, path: Path, fail_on: str | None = None) -> RecordingFeed:
    source = JsonlSource(str(path), follow=False)
    source_id = await storage.ensure_source(source.spec.text, "jsonl")
    feed = RecordingFeed(storage, source_id, fail_on=fail_on)
    await source.run(feed)
    return feed


async def test_reads_every_post_with_its_fields(storage: Storage, tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text(_line(1, "Орешник «на марше»") + _line(2, "INF Treaty"), encoding="utf-8")
    feed = await _read_once(storage, path)
    assert feed.delivered == ["1", "2"]
    stored = await storage.get_post("jsonl", "milinfo", "1")
    assert stored is not None
    assert stored.post.text == "Орешник «на марше»"
    assert stored.post.url == "https://t.me/milinfo/1"
    assert stored.post.date.utcoffset() is not None


async def test_malformed_lines_are_logged_with_line_number_and_skipped(
    storage: Storage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "posts.jsonl"
    lines = [
        _line(1),
        "{not json\n",
        "[1, 2]\n",
        json.dumps({"channel": "c", "id": 3, "text": "no date"}) + "\n",
        json.dumps({"channel": "c", "id": 4, "date": "yesterday", "text": "x"}) + "\n",
        json.dumps({"channel": "", "id": 5, "date": "2026-11-20", "text": "x"}) + "\n",
        json.dumps(
            {
                "channel": "c",
                "id": 6,
                "date": "2026-11-20",
                "text": "x",
                "url": "javascript:alert(1)",
            }
        )
        + "\n",
        "\n",
        _line(7),
    ]
    path.write_text("".join(lines), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="bot.sources.jsonl"):
        feed = await _read_once(storage, path)
    assert feed.delivered == ["1", "7"]
    messages = [r.getMessage() for r in caplog.records]
    for number in (2, 3, 4, 5, 6, 7):
        assert any(f"line {number}:" in m for m in messages), (number, messages)
    assert any("date" in m for m in messages if "line 4:" in m)


async def test_restart_processes_only_new_lines(storage: Storage, tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text(_line(1) + _line(2), encoding="utf-8")
    assert (await _read_once(storage, path)).delivered == ["1", "2"]
    with path.open("a", encoding="utf-8") as handle:
        handle.write(_line(3) + "{broken\n" + _line(4))
    assert (await _read_once(storage, path)).delivered == ["3", "4"]
    assert (await _read_once(storage, path)).delivered == []
    assert await storage.count_posts() == 4


async def test_crash_while_storing_repeats_nothing_and_skips_nothing(
    storage: Storage, tmp_path: Path
) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text(_line(1) + _line(2) + _line(3), encoding="utf-8")
    with pytest.raises(RuntimeError):
        await _read_once(storage, path, fail_on="2")
    after_restart = await _read_once(storage, path)
    assert after_restart.delivered == ["2", "3"]


async def test_unterminated_last_line_waits_for_its_newline(
    storage: Storage, tmp_path: Path
) -> None:
    path = tmp_path / "posts.jsonl"
    whole = _line(2)
    path.write_text(_line(1) + whole[:20], encoding="utf-8")
    assert (await _read_once(storage, path)).delivered == ["1"]
    with path.open("a", encoding="utf-8") as handle:
        handle.write(whole[20:])
    assert (await _read_once(storage, path)).delivered == ["2"]


async def test_over_long_line_is_skipped(storage: Storage, tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    huge = json.dumps(
        {"channel": "c", "id": 2, "date": "2026-11-20", "text": "x" * MAX_LINE_BYTES}
    )
    path.write_text(_line(1) + huge + "\n" + _line(3), encoding="utf-8")
    assert (await _read_once(storage, path)).delivered == ["1", "3"]


async def test_replaced_file_is_read_from_the_top_without_duplicates(
    storage: Storage, tmp_path: Path
) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text(_line(1) + _line(2), encoding="utf-8")
    await _read_once(storage, path)
    replacement = tmp_path / "new.jsonl"
    replacement.write_text(_line(2) + _line(3), encoding="utf-8")
    replacement.replace(path)  # a new inode, as log rotation would leave
    await _read_once(storage, path)
    assert await storage.count_posts() == 3


async def test_hostile_bytes_are_cleaned(storage: Storage, tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    raw = (
        b'{"channel": "c", "id": 1, "date": "2026-11-20", "text": "bad \\ud800 surrogate'
        b' \\u0000 nul \xff byte"}\n'
    )
    path.write_bytes(raw)
    await _read_once(storage, path)
    stored = await storage.get_post("jsonl", "c", "1")
    assert stored is not None
    assert "\x00" not in stored.post.text
    assert "surrogate" in stored.post.text
    stored.post.text.encode("utf-8")  # would raise on a lone surrogate


async def test_lines_appended_while_following_are_picked_up(
    storage: Storage, tmp_path: Path
) -> None:
    path = tmp_path / "posts.jsonl"
    source = JsonlSource(str(path), poll_interval=0.05)  # file does not exist yet
    source_id = await storage.ensure_source(source.spec.text, "jsonl")
    feed = RecordingFeed(storage, source_id)
    task = asyncio.create_task(source.run(feed))
    try:
        await asyncio.sleep(0.1)
        path.write_text(_line(1), encoding="utf-8")
        for _ in range(200):
            if feed.delivered:
                break
            await asyncio.sleep(0.025)
        assert feed.delivered == ["1"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_parse_line_accepts_string_ids_and_naive_dates() -> None:
    post = parse_line(
        b'{"channel": "@chan", "id": "abc", "date": "2026-11-20T10:00:00", "text": "t"}'
    )
    assert (post.channel, post.post_id, post.url) == ("chan", "abc", None)
    assert post.date.utcoffset() is not None
