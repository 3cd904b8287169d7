"""`dozor run` on PostgreSQL (`DATABASE_URL`): commands, alerts, a kill -9 and a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from tests.botapi import FakeBotAPI
from tests.contract.conftest import _empty_tables
from tests.test_process import (
    BOUND,
    USER,
    Service,
    _env,
    _post,
    _run_cli_async,
    _until,
    _wait_alerts,
)


def _pending(url: str) -> int:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT (SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL)"
            " + (SELECT COUNT(*) FROM fresh_alerts)"
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
async def service(tmp_path: Path, api: FakeBotAPI, postgres_url: str) -> AsyncIterator[Service]:
    await _empty_tables(postgres_url)
    env = _env(tmp_path, api.base_url)
    env["DATABASE_URL"] = postgres_url
    env["DOZOR_DB"] = str(tmp_path / "unused.sqlite3")  # PostgreSQL wins: never created
    running = Service(env, tmp_path)
    yield running
    if running.process is not None and running.process.returncode is None:
        await running.kill()


async def test_the_service_runs_on_postgres_across_a_kill(
    service: Service, api: FakeBotAPI, tmp_path: Path
) -> None:
    posts = tmp_path / "posts.jsonl"
    posts.write_text("", encoding="utf-8")
    await service.start()
    assert service.process is not None

    code, output = await _run_cli_async(service.env, tmp_path, "run")
    assert code == 2  # one service per database, as on SQLite
    assert "already used by a running Dozor service" in output

    api.push_message(USER, "/start", user_id=USER)
    await api.wait_for_sent(1, chat_id=USER, timeout=BOUND)
    api.push_message(USER, "/subscribe Oreshnik", user_id=USER)
    replies = await api.wait_for_sent(2, chat_id=USER, timeout=BOUND)
    assert "Subscribed" in replies[-1].text

    with posts.open("a", encoding="utf-8") as handle:
        handle.write(_post(1, "Подготовка расчётов: Oreshnik на марше"))
    (first,) = await _wait_alerts(api, 1, service)
    assert "<b>Oreshnik</b>" in first.text

    # Killed with nothing in flight, so the promise is "none twice" (see test_process.py).
    await _until(lambda: _pending(service.env["DATABASE_URL"]) == 0, "an empty outbox", service)
    await service.kill()  # the server ends the session: the lock goes with it
    with posts.open("a", encoding="utf-8") as handle:  # written while Dozor is down
        handle.write(_post(2, "Oreshnik: new deployment announced"))
        handle.write(_post(3, "Football results"))
    await service.start()
    alerts = await _wait_alerts(api, 2, service)
    assert await service.terminate() == 0
    links = [a.text.split('href="')[1].split('"')[0] for a in alerts]
    assert links == ["https://t.me/milinfo/1", "https://t.me/milinfo/2"]  # none twice
    assert not (tmp_path / "unused.sqlite3").exists()
