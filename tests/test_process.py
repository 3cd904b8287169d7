"""The whole service as a subprocess: a user subscribes, posts arrive, `kill -9`, restart.

`dozor run` talks to the stand-in Bot API on loopback and follows a jsonl file; the test
plays the user (through updates) and the channel (by appending lines).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.botapi import FakeBotAPI, SentMessage
from tests.conftest import TEST_TOKEN

USER = 777
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Service:
    """`dozor run` in a child process, with its log kept for failure messages."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.process: asyncio.subprocess.Process | None = None
        self.log = cwd / "dozor.log"

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot.cli",
                "run",
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=log,
            )

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), 20)

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]


def _post(post_id: int, text: str) -> str:
    record = {
        "channel": "milinfo",
        "id": post_id,
        "date": datetime.now(UTC).isoformat(),
        "text": text,
        "url": f"https://t.me/milinfo/{post_id}",
    }
    return json.dumps(record, ensure_ascii=False) + "\n"


def _alerts(api: FakeBotAPI) -> list[SentMessage]:
    return [m for m in api.sent_to(USER) if "t.me/milinfo/" in m.text]


async def _wait_alerts(api: FakeBotAPI, count: int, service: Service) -> list[SentMessage]:
    for _ in range(400):
        if len(_alerts(api)) >= count:
            return _alerts(api)
        await asyncio.sleep(0.05)
    pytest.fail(f"expected {count} alert(s), got {len(_alerts(api))}\n{service.tail()}")


@pytest.fixture
async def service(tmp_path: Path, api: FakeBotAPI) -> AsyncIterator[Service]:
    digest_at = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(PROJECT_ROOT),
        "BOT_TOKEN": TEST_TOKEN,
        "TELEGRAM_API_BASE": api.base_url,
        "DOZOR_DB": str(tmp_path / "dozor.sqlite3"),
        "SOURCES": f"jsonl:{tmp_path / 'posts.jsonl'}",
        "DIGEST_TIME": digest_at,  # far from now: no digest interferes
        "LOG_LEVEL": "INFO",
    }
    running = Service(env, tmp_path)
    yield running
    if running.process is not None and running.process.returncode is None:
        await running.kill()


async def test_subscribe_alert_kill_restart(
    service: Service, api: FakeBotAPI, tmp_path: Path
) -> None:
    posts = tmp_path / "posts.jsonl"
    posts.write_text("", encoding="utf-8")
    await service.start()

    api.push_message(USER, "/start", user_id=USER)
    await api.wait_for_sent(1, chat_id=USER, timeout=30)
    api.push_message(USER, "/subscribe Oreshnik", user_id=USER)
    replies = await api.wait_for_sent(2, chat_id=USER, timeout=10)
    assert "Subscribed" in replies[-1].text

    with posts.open("a", encoding="utf-8") as handle:
        handle.write(_post(1, "Подготовка расчётов: Oreshnik на марше"))
    (first,) = await _wait_alerts(api, 1, service)
    assert 'href="https://t.me/milinfo/1"' in first.text
    assert "<b>Oreshnik</b>" in first.text

    with posts.open("a", encoding="utf-8") as handle:
        handle.write(_post(2, "Погода: снег и гололёд"))  # unrelated: no alert
        handle.write(_post(3, "Second Oreshnik convoy spotted"))
    alerts = await _wait_alerts(api, 2, service)
    assert [a.text.count("t.me/milinfo/3") for a in alerts] == [0, 1]

    await service.kill()
    with posts.open("a", encoding="utf-8") as handle:  # written while Dozor is down
        handle.write(_post(4, "Oreshnik: new deployment announced"))
        handle.write(_post(5, "Football results"))
    await service.start()
    alerts = await _wait_alerts(api, 3, service)
    assert 'href="https://t.me/milinfo/4"' in alerts[-1].text

    with posts.open("a", encoding="utf-8") as handle:
        handle.write(_post(6, "Oreshnik once more, live after the restart"))
    alerts = await _wait_alerts(api, 4, service)
    assert await service.terminate() == 0
    links = [a.text.split('href="')[1].split('"')[0] for a in alerts]
    assert links == [f"https://t.me/milinfo/{n}" for n in (1, 3, 4, 6)]  # none twice
    assert "shutting down" in service.tail()


async def test_digest_now_sends_each_subscriber_with_matches(
    service: Service, api: FakeBotAPI, tmp_path: Path
) -> None:
    from bot.domain import Post, Span
    from bot.storage import Storage
    from bot.storage.sqlite import MatchRecord

    storage = await Storage.open(service.env["DOZOR_DB"])
    for chat_id in (USER, USER + 1):
        await storage.upsert_subscriber(chat_id, "reader")
    subscription = await storage.add_subscription(USER, "Oreshnik")
    assert subscription is not None
    post = Post(
        "jsonl", "milinfo", "9", datetime.now(UTC), "Oreshnik & <co>", "https://t.me/milinfo/9"
    )
    match = MatchRecord(subscription.id, USER, "Oreshnik", (Span(0, 8),))
    await storage.save_post(post, [match])
    await storage.close()

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "digest",
        "--now",
        env=service.env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, output.decode()
    # The alert queued by save_post goes out too: one sender drains the whole outbox.
    texts = [m.text for m in api.sent_to(USER)]
    digest = next(t for t in texts if "Digest" in t)
    assert "1 matched post" in digest
    assert "Oreshnik &amp; &lt;co&gt;" in digest
    assert api.sent_to(USER + 1) == []  # no matches, no digest
