"""Both engines open, migrate once, and refuse what they cannot use with one clear line."""

from __future__ import annotations

import pytest

from bot.storage import Storage, StorageError
from bot.storage.postgres import PostgresStorage


async def test_an_empty_store_is_writable(store: Storage) -> None:
    await store.check_writable()


async def test_postgres_migrates_once_and_reopens(postgres_url: str) -> None:
    first = await PostgresStorage.open(postgres_url)
    version = await first.schema_version()
    await first.close()
    again = await PostgresStorage.open(postgres_url)  # nothing left to apply
    assert await again.schema_version() == version >= 1
    await again.close()


async def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    url = "postgresql://dozor:s3cret@127.0.0.1:1/nowhere?connect_timeout=2"
    with pytest.raises(StorageError) as raised:
        await PostgresStorage.open(url)
    message = str(raised.value)
    assert "127.0.0.1:1/nowhere" in message
    assert "DATABASE_URL" in message
    assert "s3cret" not in message
