"""Shared fixtures: a real SQLite file per test and a stand-in Bot API server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram import Bot, Dispatcher

from bot.app import build_dispatcher, make_bot
from bot.config import Settings
from bot.ingest import Matcher
from bot.storage import SqliteStorage, Storage
from tests.botapi import FakeBotAPI

TEST_TOKEN = "123456:TEST-token-for-the-stand-in-server"


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real setting and no `.env` in the working folder may leak into a test: every
    Dozor variable unset, the test's own folder the working folder."""
    variables = {name.upper() for name in Settings.model_fields}
    for name in list(os.environ):
        if name.upper() in variables:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    db = await SqliteStorage.open(tmp_path / "dozor.sqlite3")
    yield db
    await db.close()


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    """The service's own Bot (its session, defaults and JSON decoding) on the stand-in."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, bot_token=TEST_TOKEN, telegram_api_base=api.base_url
    )
    client = make_bot(settings)
    yield client
    await client.session.close()


USER = 501


class Chat:
    """A person typing into the bot and reading its replies."""

    def __init__(self, api: FakeBotAPI, chat_id: int = USER, chat_type: str = "private") -> None:
        self.api = api
        self.chat_id = chat_id
        self.chat_type = chat_type

    async def say(self, text: str) -> str:
        return await self.api.say(self.chat_id, text, user_id=USER, chat_type=self.chat_type)


@pytest.fixture
async def matcher(storage: Storage) -> AsyncIterator[Matcher]:
    built = Matcher(storage)
    await built.refresh()
    yield built
    built.close()


@contextlib.asynccontextmanager
async def dispatching(dispatcher: Dispatcher, bot: Bot) -> AsyncIterator[None]:
    """`dispatcher` polling the stand-in Bot API for the duration of the block."""
    task = asyncio.create_task(
        dispatcher.start_polling(
            bot, handle_signals=False, close_bot_session=False, polling_timeout=1
        )
    )
    try:
        yield
    finally:
        if task.done():  # polling ended early: its exception is the real failure
            task.result()
        await dispatcher.stop_polling()
        await asyncio.wait_for(task, 30)


@contextlib.asynccontextmanager
async def polling(
    storage: Storage, matcher: Matcher, bot: Bot, settings: Settings | None = None
) -> AsyncIterator[None]:
    """The service's dispatcher (every router) polling the stand-in for the block."""
    settings = settings or Settings(_env_file=None)  # type: ignore[call-arg]
    async with dispatching(build_dispatcher(storage, matcher, settings), bot):
        yield


@pytest.fixture
async def chat(
    storage: Storage, matcher: Matcher, api: FakeBotAPI, bot: Bot
) -> AsyncIterator[Chat]:
    """A person in a private chat with the bot (the real dispatcher on the stand-in)."""
    async with polling(storage, matcher, bot):
        yield Chat(api)
