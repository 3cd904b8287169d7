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
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from aiohttp import web

from tests.botapi import FakeBotAPI, SentMessage
from tests.conftest import TEST_TOKEN
from tests.loopback import LoopbackServer

USER = 777
T = TypeVar("T")
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


async def _wait_for(collect: Callable[[], list[T]], count: int, service: Service) -> list[T]:
    """What `collect` finds once it finds `count` things (or fail with the service's log)."""
    for _ in range(400):
        if len(found := collect()) >= count:
            return found
        await asyncio.sleep(0.05)
    pytest.fail(f"expected {count} alert(s), got {collect()}\n{service.tail()}")


async def _wait_alerts(api: FakeBotAPI, count: int, service: Service) -> list[SentMessage]:
    return await _wait_for(lambda: _alerts(api), count, service)


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


class PolledPlaces(LoopbackServer):
    """A news feed and the X API on loopback, for `rss:` and `x:` sources in the service."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[str, str]] = []  # (guid, title)
        self.tweets: list[tuple[int, str]] = []  # (id, text)

    async def feed(self, request: web.Request) -> web.Response:
        now = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        items = "".join(
            f"<item><guid>{guid}</guid><title>{title}</title><link>{guid}</link>"
            f"<pubDate>{now}</pubDate></item>"
            for guid, title in reversed(self.items)
        )
        body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>N</title>{items}'
        return web.Response(text=body + "</channel></rss>", content_type="application/rss+xml")

    async def lookup(self, request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer test-bearer"
        return web.json_response({"data": {"id": "42", "username": "SokovNikolai", "name": "N"}})

    async def timeline(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since_id", "0"))
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        data = [
            {"id": str(tweet_id), "text": text, "created_at": now}
            for tweet_id, text in sorted(self.tweets, reverse=True)
            if tweet_id > since
        ]
        if not data:
            return web.json_response({"meta": {"result_count": 0}})
        meta = {"result_count": len(data), "newest_id": data[0]["id"]}
        return web.json_response({"data": data, "meta": meta})

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/feed.xml", self.feed)
        app.router.add_get("/2/users/by/username/{name}", self.lookup)
        app.router.add_get("/2/users/{id}/tweets", self.timeline)


def _links(api: FakeBotAPI) -> list[str]:
    return [
        m.text.split('href="')[1].split('"')[0]
        for m in api.sent_to(USER)
        if "news.example" in m.text or "x.com/" in m.text
    ]


async def _wait_links(api: FakeBotAPI, count: int, service: Service) -> list[str]:
    return await _wait_for(lambda: _links(api), count, service)


async def test_feeds_and_x_accounts_alert_across_a_kill(service: Service, api: FakeBotAPI) -> None:
    async with PolledPlaces() as places:
        service.env.update(
            SOURCES=f"rss:{places.base_url}/feed.xml,x:@SokovNikolai",
            X_BEARER_TOKEN="test-bearer",
            X_API_BASE=places.base_url,
            RSS_POLL_MINUTES="0.005",
            X_POLL_MINUTES="0.005",
        )
        await service.start()
        api.push_message(USER, "/start", user_id=USER)
        await api.wait_for_sent(1, chat_id=USER, timeout=30)
        api.push_message(USER, "/subscribe Oreshnik", user_id=USER)
        await api.wait_for_sent(2, chat_id=USER, timeout=10)

        places.items.append(("https://news.example/1", "Oreshnik on duty in Belarus"))
        places.items.append(("https://news.example/2", "Grain prices"))
        places.tweets.append((1001, "Orechnik? No: Oreshnik. Thread on the INF aftermath"))
        links = await _wait_links(api, 2, service)
        assert sorted(links) == [
            "https://news.example/1",
            "https://x.com/SokovNikolai/status/1001",
        ]

        await service.kill()
        places.items.append(("https://news.example/3", "Second Oreshnik regiment"))
        places.tweets.append((1002, "More on Oreshnik"))
        await service.start()
        links = await _wait_links(api, 4, service)
        await asyncio.sleep(0.5)  # several more polls: nothing is sent twice
        assert await service.terminate() == 0
    links = _links(api)
    assert len(links) == len(set(links)) == 4
    assert "https://news.example/3" in links
    assert "https://x.com/SokovNikolai/status/1002" in links
