"""Source management: links and specs, health words, the manager, admin commands, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiogram import Bot

from bot.app import build_dispatcher
from bot.config import Settings
from bot.domain import SourceInfo
from bot.i18n import Catalog
from bot.ingest import Ingest, Matcher
from bot.sources.health import ago, describe, warning
from bot.sources.links import find_sources, parse_source
from bot.sources.manager import SourceManager
from bot.sources.registry import build_source
from bot.storage import Storage
from tests.botapi import FakeBotAPI

ADMIN = 900
EN = Catalog(strict=True).texts("en")
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ARTICLE = """
Как сообщает канал https://t.me/militaryrussiaru/36594, «Орешник» ... По мнению
Николая Сокова (https://x.com/SokovNikolai/status/1893000000000000000) и
twitter.com/MassDara, а также t.me/s/milinfolive и https://t.me/MilitaryRussiaRu/1 (повтор).
Не каналы: https://t.me/joinchat/AbCdEf, https://t.me/+AbCdEf12, https://t.me/c/1234567/89,
https://x.com/i/web/status/1, https://twitter.com/intent/tweet?text=x, https://t.me/share/url?url=x
"""


def test_import_finds_each_channel_and_account_once() -> None:
    assert [spec.text for spec in find_sources(ARTICLE)] == [
        "telegram:@militaryrussiaru",
        "telegram:@milinfolive",
        "x:@SokovNikolai",
        "x:@MassDara",
    ]


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("https://t.me/militaryrussiaru/36594", "telegram:@militaryrussiaru"),
        ("@milinfolive", "telegram:@milinfolive"),
        ("telegram:@MilInfoLive", "telegram:@milinfolive"),
        ("tgweb:milinfolive", "tgweb:milinfolive"),
        ("x.com/SokovNikolai", "x:@SokovNikolai"),
        ("x:@baklitskiy", "x:@baklitskiy"),
        ("https://www.themoscowtimes.com/rss/news", "rss:https://www.themoscowtimes.com/rss/news"),
        ("jsonl:/srv/posts.jsonl", "jsonl:/srv/posts.jsonl"),
    ],
)
def test_parse_source(text: str, spec: str) -> None:
    assert parse_source(text).text == spec


@pytest.mark.parametrize(
    "text", ["", "hello", "telegram:@ab", "x:@way_too_long_a_name", "rss:ftp"]
)
def test_parse_source_refuses_with_a_reason(text: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        parse_source(text)


def _info(**changes: object) -> SourceInfo:
    base = SourceInfo(
        1,
        "telegram:@x",
        "telegram",
        True,
        "chat",
        NOW - timedelta(days=3),
        NOW - timedelta(hours=2),
        NOW,
        None,
        None,
        0,
        5,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_health_words() -> None:
    assert ago(EN, None, NOW) == "never"
    assert ago(EN, NOW - timedelta(minutes=5), NOW) == "5 min ago"
    assert ago(EN, NOW - timedelta(days=3), NOW) == "3 days ago"
    assert warning(EN, _info(), NOW) is None
    assert "silent" in (warning(EN, _info(last_post_at=NOW - timedelta(days=2)), NOW) or "")
    assert "silent" in (warning(EN, _info(last_post_at=None), NOW) or "")
    failing = warning(EN, _info(failures=4, last_error="FloodWait 3600 s"), NOW) or ""
    assert "failing (4 times in a row): FloodWait 3600 s" in failing


async def test_manager_follows_the_database(storage: Storage, tmp_path: Path) -> None:
    posts = tmp_path / "posts.jsonl"
    record = {"channel": "c", "id": 1, "date": "2026-11-20", "text": "Oreshnik"}
    posts.write_text(json.dumps(record) + "\n", encoding="utf-8")
    manager = SourceManager(
        storage, Ingest(storage, Matcher(storage), asyncio.Event()), build_source
    )
    await storage.add_source(f"jsonl:{posts}", "jsonl", origin="cli")
    await storage.add_source("x:@SokovNikolai", "x", origin="cli")
    await manager.sync()
    assert manager.running == [f"jsonl:{posts}"]
    for _ in range(3000):
        if await storage.count_posts():
            break
        await asyncio.sleep(0.02)
    assert await storage.count_posts() == 1
    x_source = next(i for i in await storage.list_sources() if i.kind == "x")
    assert "X_BEARER_TOKEN is not set" in (x_source.last_error or "")
    # Nothing reads it until the settings change: flagged at once, not after three tries.
    assert x_source.stopped_at is not None
    assert "stopped: x:@SokovNikolai: X_BEARER_TOKEN is not set" in (
        warning(EN, x_source, datetime.now(UTC)) or ""
    )
    # A followed file reports no completed reads: a stored post shows that reading works.
    jsonl_source = next(i for i in await storage.list_sources() if i.kind == "jsonl")
    for _ in range(3000):
        if jsonl_source.last_ok_at is not None:
            break
        await asyncio.sleep(0.02)
        jsonl_source = next(i for i in await storage.list_sources() if i.kind == "jsonl")
    assert jsonl_source.last_ok_at is not None
    await storage.remove_source(f"jsonl:{posts}")
    await manager.sync()
    assert manager.running == []
    await manager.stop_all()


RECENT_FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Arms control news</title><link>https://news.example/</link>
<item><guid>https://news.example/a/1</guid><title>Oreshnik moved to Belarus</title>
<link>https://news.example/a/1</link><pubDate>{date}</pubDate>
<description>&lt;p&gt;The &lt;b&gt;Oreshnik&lt;/b&gt; system is on duty.&lt;/p&gt;</description>
</item></channel></rss>"""


async def test_polled_sources_share_the_poller(storage: Storage) -> None:
    from aiohttp import web

    from bot.sources.registry import SourceOptions

    now = datetime.now(UTC)
    body = RECENT_FEED.format(date=now.strftime("%a, %d %b %Y %H:%M:%S +0000"))
    hits: list[str] = []

    async def serve(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text=body, content_type="application/rss+xml")

    app = web.Application()
    app.router.add_get("/{name}.xml", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    options = SourceOptions(rss_interval=3600)
    manager = SourceManager(
        storage,
        Ingest(storage, Matcher(storage), asyncio.Event()),
        lambda spec: build_source(spec, options),
        start_spread=0.5,  # the service spreads first polls over 30 s; a test need not wait
    )
    try:
        for name in ("one", "two"):
            await storage.add_source(f"rss:{base}/{name}.xml", "rss", origin="cli")
        await manager.sync()
        assert manager.running == [f"rss:{base}/one.xml", f"rss:{base}/two.xml"]
        for _ in range(6000):  # a generous bound: first polls come within 0.5 s
            if len(hits) == 2:
                break
            await asyncio.sleep(0.01)
        assert sorted(hits) == ["/one.xml", "/two.xml"]
        for _ in range(6000):
            infos = await storage.list_sources()
            if all(info.last_ok_at for info in infos):
                break
            await asyncio.sleep(0.01)
        assert all(info.last_ok_at and info.failures == 0 for info in infos)
        # One article in two feeds of one site is one post (same host, same guid).
        assert await storage.count_posts() == 1
        await storage.remove_source(f"rss:{base}/one.xml")
        await manager.sync()
        assert manager.running == [f"rss:{base}/two.xml"]
    finally:
        await manager.stop_all()
        await runner.cleanup()
    assert manager.running == []


def test_silence_is_judged_by_each_sources_rhythm() -> None:
    from bot.sources.health import SILENT_AT_LEAST, SILENT_AT_MOST, silent_after

    busy = _info(usual_gap=timedelta(minutes=30), last_post_at=NOW - timedelta(hours=7))
    assert silent_after(busy) == SILENT_AT_LEAST
    assert "usually ≤ 30 min apart" in (warning(EN, busy, NOW) or "")
    weekly = _info(usual_gap=timedelta(days=8), last_post_at=NOW - timedelta(days=12))
    assert silent_after(weekly) == timedelta(days=24)
    assert warning(EN, weekly, NOW) is None  # a weekly newsletter is not silent after 12 days
    rare = _info(usual_gap=timedelta(days=40))
    assert silent_after(rare) == SILENT_AT_MOST
    daily = _info(usual_gap=timedelta(hours=20), last_post_at=NOW - timedelta(hours=50))
    assert warning(EN, daily, NOW) is None
    assert warning(EN, replace(daily, last_post_at=NOW - timedelta(hours=61)), NOW)


async def test_the_usual_gap_comes_from_the_last_posts(storage: Storage) -> None:
    from bot.domain import Post

    source_id = await storage.ensure_source("jsonl:/x", "jsonl")
    assert (await storage.list_sources())[0].usual_gap is None
    for number in range(1, 8):
        post = Post("jsonl", "c", str(number), NOW, f"post {number}")
        await storage.save_post(post, [], source_id=source_id, cursor=str(number))
    gap = (await storage.list_sources())[0].usual_gap
    assert gap is not None
    assert gap < timedelta(minutes=1)  # stored moments apart


class Admin:
    """Someone writing to the bot in their private chat."""

    def __init__(self, api: FakeBotAPI, user_id: int) -> None:
        self.api = api
        self.user_id = user_id

    async def say(self, text: str) -> str:
        return await self.api.say(self.user_id, text, user_id=self.user_id)


@pytest.fixture
async def polling(storage: Storage, api: FakeBotAPI, bot: Bot) -> AsyncIterator[None]:
    settings = Settings(_env_file=None, admin_ids=[ADMIN])  # type: ignore[call-arg]
    dispatcher = build_dispatcher(storage, Matcher(storage), settings, None)
    task = asyncio.create_task(
        dispatcher.start_polling(
            bot, handle_signals=False, close_bot_session=False, polling_timeout=1
        )
    )
    yield
    await dispatcher.stop_polling()
    await asyncio.wait_for(task, 30)


@pytest.mark.usefixtures("polling")
async def test_admin_commands(api: FakeBotAPI, storage: Storage) -> None:
    admin, stranger = Admin(api, ADMIN), Admin(api, ADMIN + 1)
    assert "for Dozor's administrators" in await stranger.say("/addsource @milinfolive")
    assert "for Dozor's administrators" in await stranger.say("/sources")
    assert "No sources are watched" in await admin.say("/sources")
    reply = await admin.say("/addsource https://t.me/militaryrussiaru/36594")
    assert "Now watching <code>telegram:@militaryrussiaru</code>" in reply
    assert "already watched" in await admin.say("/addsource @MilitaryRussiaRu")
    assert "is not a source" in await admin.say("/addsource hello <b>")
    await storage.record_source_error(1, "FloodWaitError: wait 3600 s")
    for _ in range(3):
        await storage.record_source_error(1, "FloodWaitError: wait 3600 s")
    listing = await admin.say("/sources")
    assert "telegram:@militaryrussiaru" in listing
    assert "⚠️" in listing
    assert "failing (4 times in a row)" in listing
    assert "Stopped watching" in await admin.say("/removesource telegram:@militaryrussiaru")
    assert "is not watched" in await admin.say("/removesource @militaryrussiaru")
    assert await storage.list_sources() == []


def test_cli_sources_import_add_remove_list(tmp_path: Path) -> None:
    env = {**os.environ, "DOZOR_DB": str(tmp_path / "db.sqlite3"), "LOG_LEVEL": "WARNING"}
    env.pop("SOURCES", None)

    def dozor(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", "sources", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            check=False,
        )

    article = tmp_path / "article.txt"
    article.write_text(ARTICLE, encoding="utf-8")
    first = dozor("import", str(article))
    assert first.stdout.splitlines() == [
        "added: telegram:@militaryrussiaru",
        "added: telegram:@milinfolive",
        "added: x:@SokovNikolai",
        "added: x:@MassDara",
    ]
    again = dozor("import", "-", stdin=ARTICLE)
    assert all(line.startswith("already watched") for line in again.stdout.splitlines())
    assert dozor("remove", "@milinfolive").stdout.strip() == "removed: telegram:@milinfolive"
    bad = dozor("add", "not a source")
    assert bad.returncode == 2
    assert "is not a source" in bad.stderr
    listing = dozor("list").stdout
    assert "telegram:@militaryrussiaru" in listing
    assert "milinfolive" not in listing


def test_cli_import_of_a_long_article_reports_progress_beside_the_list(tmp_path: Path) -> None:
    """Not on a terminal: stdout is still the list, one line per source; the progress lines
    and the total go to stderr."""
    env = {**os.environ, "DOZOR_DB": str(tmp_path / "db.sqlite3"), "LOG_LEVEL": "WARNING"}
    env.pop("SOURCES", None)
    channels = [f"channel_{n:02d}" for n in range(30)]
    article = " ".join(f"See https://t.me/{name} for more." for name in channels)
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "sources", "import", "-"],
        input=article,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"added: telegram:@{name}" for name in channels]
    progress = done.stderr.splitlines()
    assert progress[0] == "adding sources: 0 of 30 (0%)"
    assert "adding sources: 30 of 30 (100%)" in progress
    assert progress[-1] == "30 sources found: 30 added, 0 already watched"


async def test_a_stopped_source_is_reported_once_and_not_retried_in_a_loop() -> None:
    from bot.domain import SourceSpec
    from bot.sources.base import Feed, SourceStopped
    from bot.sources.supervisor import STOPPED_DELAY, supervise

    class Revoked:
        spec = SourceSpec("telegram", "@milinfolive")
        runs = 0

        async def run(self, feed: Feed) -> None:
            self.runs += 1
            if self.runs > 3:
                raise asyncio.CancelledError
            raise SourceStopped("the session was revoked; run `dozor login`")

    errors: list[tuple[str, bool]] = []
    reports: list[tuple[str, str]] = []
    sleeps: list[float] = []

    async def on_error(text: str, stopped: bool) -> None:
        errors.append((text, stopped))

    async def on_stopped(spec: str, text: str) -> None:
        reports.append((spec, text))

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    source = Revoked()
    with pytest.raises(asyncio.CancelledError):
        await supervise(source, None, on_error, on_stopped=on_stopped, sleep=sleep)  # type: ignore[arg-type]
    assert errors == [("SourceStopped: the session was revoked; run `dozor login`", True)] * 3
    assert reports == [("telegram:@milinfolive", "the session was revoked; run `dozor login`")]
    assert sleeps == [STOPPED_DELAY] * 3


def test_telegram_without_credentials_falls_back_to_the_web_preview(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bot.sources.registry import SourceOptions
    from bot.sources.tgweb import TgWebSource

    source = build_source(parse_source("telegram:@MilInfoLive"), SourceOptions())
    assert isinstance(source, TgWebSource)
    assert source.channel == "milinfolive"
    assert "reading the public web preview instead" in caplog.text


def test_login_without_credentials_names_the_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "login"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "TG_API_ID and TG_API_HASH must be set" in result.stderr


HEALTH_NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "line", "flag"),
    [
        (
            {},
            "telegram:@x — last post 2 h ago, 5 in 24 h; read OK just now",
            None,
        ),
        (
            {"title": "Военный осведомитель"},
            "Военный осведомитель (telegram:@x) — last post 2 h ago, 5 in 24 h; read OK just now",
            None,
        ),
        (
            {"last_ok_at": None},
            "telegram:@x — last post 2 h ago, 5 in 24 h",
            None,
        ),
        (  # stopped: flagged at the first failure
            {
                "last_ok_at": HEALTH_NOW - timedelta(days=3),
                "failures": 1,
                "last_error": "XAuthError: X API refused the token (HTTP 401)",
                "last_error_at": HEALTH_NOW - timedelta(minutes=5),
                "failing_since": HEALTH_NOW - timedelta(hours=1, minutes=18),
                "stopped_at": HEALTH_NOW - timedelta(hours=1, minutes=18),
            },
            "telegram:@x — last post 2 h ago, 5 in 24 h; stopped since 10:42 UTC:"
            " XAuthError: X API refused the token (HTTP 401); last read OK 3 days ago",
            "stopped: XAuthError: X API refused the token (HTTP 401)",
        ),
        (  # failing, not yet flagged
            {
                "last_ok_at": HEALTH_NOW - timedelta(hours=2),
                "failures": 1,
                "last_error": "FetchError: HTTP 502",
                "last_error_at": HEALTH_NOW - timedelta(minutes=1),
                "failing_since": HEALTH_NOW - timedelta(minutes=1),
            },
            "telegram:@x — last post 2 h ago, 5 in 24 h; failing since 11:59 UTC:"
            " FetchError: HTTP 502, once; last read OK 2 h ago",
            None,
        ),
        (  # failing since yesterday, flagged from the third failure
            {
                "last_ok_at": HEALTH_NOW - timedelta(hours=30),
                "failures": 3,
                "last_error": "FetchError: HTTP 502",
                "last_error_at": HEALTH_NOW - timedelta(minutes=1),
                "failing_since": HEALTH_NOW - timedelta(hours=29),
            },
            "telegram:@x — last post 2 h ago, 5 in 24 h; failing since 26 Nov 07:00 UTC:"
            " FetchError: HTTP 502, 3 times in a row; last read OK 30 h ago",
            "failing (3 times in a row): FetchError: HTTP 502",
        ),
    ],
    ids=["healthy", "titled", "not-read-yet", "stopped", "failing-once", "failing"],
)
def test_a_source_reads_as_healthy_failing_or_stopped(
    changes: dict[str, object], line: str, flag: str | None
) -> None:
    info = _info(**changes)
    assert describe(EN, info, HEALTH_NOW) == line
    assert warning(EN, info, HEALTH_NOW) == flag
    assert "read OK just now" not in line or not info.failures


def test_times_of_day_follow_the_service_time_zone() -> None:
    from zoneinfo import ZoneInfo

    info = _info(
        failures=1,
        last_error="FetchError: HTTP 502",
        stopped_at=HEALTH_NOW - timedelta(minutes=18),
        failing_since=HEALTH_NOW - timedelta(minutes=18),
    )
    moscow = describe(EN, info, HEALTH_NOW, ZoneInfo("Europe/Moscow"))
    assert "stopped since 14:42 MSK: FetchError: HTTP 502" in moscow
