"""A full disk while alerts go out: every alert is sent once, sending pauses and alarms, and
resumes when space is back — on a real, really full file system."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot

from bot.delivery.outbox import OutboxWorker
from bot.delivery.sender import Pacer, TelegramSender
from bot.domain import Post, Span
from bot.storage import Storage
from bot.storage.sqlite import MatchRecord
from tests.botapi import FakeBotAPI
from tests.filesystems import tmpfs

CHATS = [9001, 9002, 9003, 9004, 9005]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB file system of its own (tmpfs), so the test can fill it up."""
    with tmpfs(tmp_path / "disk") as folder:
        yield folder


def _fill(folder: Path) -> Path:
    """Write a file until the file system is full; returns it (delete it to free the space)."""
    filler = folder / "filler"
    chunk = b"\0" * (64 * 1024)
    with filler.open("wb", buffering=0) as handle:
        while True:
            try:
                handle.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        with contextlib.suppress(OSError):  # the last, partial blocks
            while handle.write(b"\0" * 512):
                pass
    return filler


async def _until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60.0
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _queue(storage: Storage, post_id: str) -> None:
    post = Post("jsonl", "milinfo", post_id, datetime.now(UTC), f"Oreshnik {post_id}", None)
    matches = []
    for chat in CHATS:
        for subscription in await storage.subscriptions_of(chat):
            matches.append(MatchRecord(subscription.id, chat, "Oreshnik", (Span(0, 8),)))
    await storage.save_post(post, matches)


async def test_a_full_disk_stops_sending_instead_of_repeating_and_resumes(
    small_disk: Path, api: FakeBotAPI, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    storage = await Storage.open(small_disk / "dozor.sqlite3")
    alarms: list[str] = []

    async def alarm(text: str) -> None:
        alarms.append(text)

    ready = asyncio.Event()
    sender = TelegramSender(bot, Pacer(private_interval=0.0))
    worker = OutboxWorker(storage, sender, ZoneInfo("UTC"), ready, alarm=alarm)
    running: asyncio.Task[None] | None = None
    try:
        for chat in CHATS:
            await storage.upsert_subscriber(chat, f"reader {chat}")
            await storage.add_subscription(chat, "Oreshnik")
        await _queue(storage, "1")
        filler = _fill(small_disk)

        running = asyncio.create_task(worker.run())
        await _until(lambda: len(api.sent) >= len(CHATS), "the first alerts")
        await _until(lambda: worker.stalled, "the worker to stall")
        # It keeps trying to record (with back-off) but sends nothing again meanwhile.
        retries = "still cannot record sent messages"
        await _until(lambda: caplog.text.count(retries) >= 1, "a failed recording")
        assert [len(api.sent_to(chat)) for chat in CHATS] == [1] * len(CHATS)
        assert len(alarms) == 1
        assert "cannot record" in alarms[0]
        assert "sending is paused" in caplog.text

        filler.unlink()  # space is back
        await _until(lambda: not worker.stalled, "the worker to resume")
        counts = await storage.outbox_counts()
        assert counts == {"pending": 0, "sent": len(CHATS), "failed": 0}
        assert any("sending resumed" in text for text in alarms)

        await _queue(storage, "2")  # and it goes on as before
        ready.set()
        await _until(lambda: len(api.sent) >= 2 * len(CHATS), "the next alerts")
        assert [len(api.sent_to(chat)) for chat in CHATS] == [2] * len(CHATS)
    finally:
        worker.stop()
        if running is not None:
            await asyncio.wait_for(running, 30)
        await storage.close()
