"""Shared fixtures: a real SQLite file per test and a stand-in Bot API server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.storage import Storage
from tests.botapi import FakeBotAPI

TEST_TOKEN = "123456:TEST-token-for-the-stand-in-server"


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    db = await Storage.open(tmp_path / "dozor.sqlite3")
    yield db
    await db.close()


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))
    client = Bot(TEST_TOKEN, session=session, default=DefaultBotProperties(parse_mode="HTML"))
    yield client
    await client.session.close()
