"""Both engines open, migrate once, and refuse what they cannot use with one clear line."""

from __future__ import annotations

import pytest

from bot.storage import DatabaseInUse, Storage, StorageError
from bot.storage.postgres import PostgresStorage
from tests.contract.conftest import _eventually


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


async def test_postgres_keeps_one_service_per_database(postgres_url: str) -> None:
    service = await PostgresStorage.open(postgres_url, exclusive=True)
    try:
        with pytest.raises(DatabaseInUse) as raised:
            await PostgresStorage.open(postgres_url, exclusive=True)
        assert "already used by a running Dozor service" in str(raised.value)
        assert "server process" in str(raised.value)
        tool = await PostgresStorage.open(postgres_url)  # `dozor sources` beside it: fine
        await tool.close()
    finally:
        await service.close()

    # Released at close: the server ends the session (and frees its locks) a moment later.
    async def released() -> bool:
        try:
            again = await PostgresStorage.open(postgres_url, exclusive=True)
        except DatabaseInUse:
            return False
        await again.close()
        return True

    await _eventually(released)
