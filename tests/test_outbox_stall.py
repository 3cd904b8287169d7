"""A full disk (or a database refusing writes) while alerts go out: every alert is sent once,
sending pauses and alarms, and resumes when writes are taken again — on a real, really full
file system where the machine lets the test mount one."""

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
from bot.i18n import Catalog
from bot.storage import SqliteStorage, Storage
from bot.storage.sqlite import MatchRecord
from tests.botapi import FakeBotAPI
from tests.filesystems import tmpfs

CHATS = [9001, 9002, 9003, 9004, 9005]


class FullDisk:
    """The database's own file system fills up (a real tmpfs; needs root to mount)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._filler: Path | None = None

    async def break_(self, storage: Storage) -> None:
        self._filler = _fill(self.folder)

    async def repair(self, storage: Storage) -> None:
        assert self._filler is not None
        self._filler.unlink()


class RefusingDatabase:
    """The database refuses every write (SQLite's query_only: what a read-only remount or
    another program's lock looks like to us), for machines where mounting is not allowed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def break_(self, storage: Storage) -> None:
        await storage._db.execute("PRAGMA query_only = ON")

    async def repair(self, storage: Storage) -> None:
        await storage._db.execute("PRAGMA query_only = OFF")


Trouble = FullDisk | RefusingDatabase


@pytest.fixture(params=["disk full", "writes refused"])
def trouble(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Trouble]:
    if request.param == "writes refused":
        yield RefusingDatabase(tmp_path)
        return
    with tmpfs(tmp_path / "disk") as folder:
        yield FullDisk(folder)


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


async def _subscribe_everyone(storage: Storage) -> None:
    for chat in CHATS:
        await storage.upsert_subscriber(chat, f"reader {chat}")
        await storage.add_subscription(chat, "Oreshnik")


async def _queue(storage: Storage, post_id: str) -> None:
    post = Post("jsonl", "milinfo", post_id, datetime.now(UTC), f"Oreshnik {post_id}", None)
    matches = []
    for chat in CHATS:
        for subscription in await storage.subscriptions_of(chat):
            matches.append(MatchRecord(subscription.id, chat, "Oreshnik", (Span(0, 8),)))
    await storage.save_post(post, matches)
    await storage.file_alerts()  # into the chats' queues while the database still writes


async def test_a_database_that_cannot_record_stops_sending_instead_of_repeating(
    trouble: Trouble,
    api: FakeBotAPI,
    bot: Bot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    storage = await SqliteStorage.open(trouble.folder / "dozor.sqlite3")
    alarms: list[str] = []

    english = Catalog(strict=True).texts("en")

    async def alarm(key: str, /, **args: str | int) -> None:
        alarms.append(english(key, **args))

    ready = asyncio.Event()
    sender = TelegramSender(bot, Pacer(private_interval=0.0))
    worker = OutboxWorker(storage, sender, ZoneInfo("UTC"), ready, alarm=alarm)
    running: asyncio.Task[None] | None = None
    try:
        await _subscribe_everyone(storage)
        await _queue(storage, "1")
        await trouble.break_(storage)

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

        await trouble.repair(storage)  # space is back, writes are taken again
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


async def test_a_failed_send_that_cannot_be_postponed_waits_for_writes_before_retrying(
    tmp_path: Path, api: FakeBotAPI, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing was delivered, so there is nothing to record: the worker must still prove the
    # database takes writes before it sends again, not "recover" at once and loop.
    caplog.set_level(logging.INFO)
    trouble = RefusingDatabase(tmp_path)
    storage = await SqliteStorage.open(tmp_path / "dozor.sqlite3")
    worker = OutboxWorker(
        storage, TelegramSender(bot, Pacer(private_interval=0.0)), ZoneInfo("UTC"), asyncio.Event()
    )
    running: asyncio.Task[None] | None = None
    try:
        await _subscribe_everyone(storage)
        await _queue(storage, "1")
        api.set_unavailable(502)
        await trouble.break_(storage)
        running = asyncio.create_task(worker.run())
        await _until(lambda: worker.stalled, "the worker to stall")
        await _until(lambda: "still cannot record" in caplog.text, "a failed probe")
        assert "takes writes again" not in caplog.text
        assert api.sent == []

        api.set_unavailable(None)
        await trouble.repair(storage)
        await _until(lambda: len(api.sent) >= len(CHATS), "the alerts")
        assert [len(api.sent_to(chat)) for chat in CHATS] == [1] * len(CHATS)
    finally:
        worker.stop()
        if running is not None:
            await asyncio.wait_for(running, 30)
        await storage.close()
