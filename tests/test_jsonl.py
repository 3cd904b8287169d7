"""The jsonl source against a real file and a real SQLite store: cursor, restarts, bad lines,
log rotation (rename and copy-truncate) while following and while stopped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TextIO

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
        for _ in range(2400):
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


# Log rotation. The follower runs in this event loop, so whatever a test does between two
# awaits (write, rename, truncate) happens, as far as the follower can tell, at one instant:
# the state before a rotation is set up exactly, with no race against its polls.


WAIT_LIMIT = 20.0  # seconds; a follower polling every 20 ms needs far less, even on a busy CI


class _Follower:
    """A following JsonlSource on a real store, and a way to wait for what it delivers."""

    def __init__(self, feed: RecordingFeed, task: asyncio.Task[None]) -> None:
        self.feed = feed
        self.task = task

    async def wait_for(self, post_id: str) -> None:
        """Wait until `post_id` is delivered; the bound is generous for a loaded machine."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_LIMIT
        while post_id not in self.feed.delivered and loop.time() < deadline:
            if self.task.done():
                self.task.result()  # raises whatever stopped the follower
                break
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def _following(
    storage: Storage, path: Path, rotation_grace: float = 60.0
) -> AsyncIterator[_Follower]:
    source = JsonlSource(str(path), poll_interval=0.02, rotation_grace=rotation_grace)
    source_id = await storage.ensure_source(source.spec.text, "jsonl")
    feed = RecordingFeed(storage, source_id)
    task = asyncio.create_task(source.run(feed))
    try:
        yield _Follower(feed, task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _append(writer: TextIO, post_ids: Iterable[int]) -> None:
    writer.write("".join(_line(post_id) for post_id in post_ids))
    writer.flush()


def _ids(first: int, last: int) -> list[str]:
    return [str(post_id) for post_id in range(first, last + 1)]


def _warnings(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and word in record.getMessage()
    ]


async def test_rename_rotation_while_following_loses_and_repeats_nothing(
    storage: Storage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text(_line(1) + _line(2), encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="bot.sources.jsonl")
    async with _following(storage, path) as follower:
        await follower.wait_for("2")
        with path.open("a", encoding="utf-8") as old_writer:
            _append(old_writer, [3])  # not yet read when the file is renamed
            path.rename(tmp_path / "posts.jsonl.1")  # logrotate `create`
            path.touch()
            _append(old_writer, [4])  # the writer has not reopened the path yet
            await follower.wait_for("4")
            _append(old_writer, [5])
            with path.open("a", encoding="utf-8") as new_writer:  # it reopens now
                _append(new_writer, [6, 7])
                await follower.wait_for("7")
        assert follower.feed.delivered == _ids(1, 7)
    [warning] = _warnings(caplog, "rotated")
    assert "finished the rotated file posts.jsonl.1 (3 lines)" in warning
    assert (await _read_once(storage, path)).delivered == []


@pytest.mark.parametrize("new_lines", [1, 8], ids=["shorter", "longer than the old offset"])
async def test_copy_truncate_while_following_loses_and_repeats_nothing(
    storage: Storage, tmp_path: Path, caplog: pytest.LogCaptureFixture, new_lines: int
) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text(_line(1) + _line(2), encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="bot.sources.jsonl")
    last = 4 + new_lines
    async with _following(storage, path) as follower:
        await follower.wait_for("2")
        # Opened for appending, the writer writes at the end even after the truncation.
        with path.open("a", encoding="utf-8") as writer:
            _append(writer, [3, 4])  # not yet read when the file is copied
            shutil.copyfile(path, tmp_path / "posts.jsonl.1")  # logrotate `copytruncate`
            os.truncate(path, 0)
            _append(writer, range(5, last + 1))
            await follower.wait_for(str(last))
        assert follower.feed.delivered == _ids(1, last)
    [warning] = _warnings(caplog, "truncated")
    assert "finished its copy posts.jsonl.1 (2 lines)" in warning
    assert (await _read_once(storage, path)).delivered == []


async def test_rotation_while_stopped_reads_the_rest_of_the_old_file_then_the_new_one(
    storage: Storage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text(_line(1) + _line(2), encoding="utf-8")
    assert (await _read_once(storage, path)).delivered == ["1", "2"]
    with path.open("a", encoding="utf-8") as writer:
        _append(writer, [3, 4])
    path.rename(tmp_path / "posts.jsonl.1")
    path.write_text(_line(5) + _line(6), encoding="utf-8")
    # Older rotations are not read again, and compressed ones are not even opened.
    (tmp_path / "posts.jsonl.2").write_text(_line(90) + _line(91), encoding="utf-8")
    (tmp_path / "posts.jsonl.3.gz").write_bytes(b"\x1f\x8b not a line")
    with caplog.at_level(logging.WARNING, logger="bot.sources.jsonl"):
        assert (await _read_once(storage, path)).delivered == ["3", "4", "5", "6"]
    [warning] = _warnings(caplog, "rotated")
    assert "finished the rotated file posts.jsonl.1 (2 lines)" in warning
    assert (await _read_once(storage, path)).delivered == []
    assert await storage.count_posts() == 6


async def test_copy_truncate_while_stopped_reads_the_copy_then_the_file_from_the_top(
    storage: Storage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text(_line(1) + _line(2), encoding="utf-8")
    assert (await _read_once(storage, path)).delivered == ["1", "2"]
    with path.open("a", encoding="utf-8") as writer:
        _append(writer, [3, 4])
        shutil.copyfile(path, tmp_path / "posts.jsonl.1")
        os.truncate(path, 0)
        _append(writer, [5, 6, 7])  # past the old offset: the size alone shows nothing
    with caplog.at_level(logging.WARNING, logger="bot.sources.jsonl"):
        assert (await _read_once(storage, path)).delivered == ["3", "4", "5", "6", "7"]
    assert len(_warnings(caplog, "truncated")) == 1
    assert (await _read_once(storage, path)).delivered == []


async def test_truncation_without_a_copy_reads_from_the_top_and_warns_once(
    storage: Storage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text(_line(1) + _line(2), encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="bot.sources.jsonl")
    async with _following(storage, path) as follower:
        await follower.wait_for("2")
        with path.open("a", encoding="utf-8") as writer:
            os.truncate(path, 0)  # the old lines are gone; nothing kept a copy
            _append(writer, [3, 4, 5])
            await follower.wait_for("5")
            _append(writer, [6])
            await follower.wait_for("6")
        assert follower.feed.delivered == _ids(1, 6)
    [warning] = _warnings(caplog, "truncated")
    assert "no rotated copy" in warning


async def test_cursor_saved_before_fingerprints_still_resumes(
    storage: Storage, tmp_path: Path
) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text(_line(1) + _line(2), encoding="utf-8")
    source_id = await storage.ensure_source(f"jsonl:{path}", "jsonl")
    old_cursor = {"offset": len(_line(1)), "line": 1, "inode": path.stat().st_ino}
    await storage.set_cursor(source_id, json.dumps(old_cursor))
    assert (await _read_once(storage, path)).delivered == ["2"]
