"""Monitoring: `/metrics` counts what a real `dozor run` did, `/healthz` fails when a part dies
or stops reporting, a taken METRICS_PORT stops the start, and the deploy files (the Grafana
dashboard, the alert rules, the compose health check) parse and name only metrics that exist.

Nothing waits a fixed time: each step polls for its event with a generous bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter

from bot.delivery.outbox import OutboxWorker
from bot.delivery.sender import Pacer, TelegramSender
from bot.domain import Post, Span
from bot.metrics import HEARTBEAT_BOUND, Health, Metrics, MetricsEndpoint
from bot.storage import SqliteStorage, Storage
from bot.storage.records import MatchRecord
from tests.botapi import FakeBotAPI
from tests.test_process import (
    ANSWERING,
    BOUND,
    Service,
    _env,
    _garbage_http,
    _post,
    _run_cli_async,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEPLOY = PROJECT_ROOT / "deploy"
READER = 801  # subscribed to "Oreshnik"
OTHER = 802  # subscribed to "Kalibr"; its first send is refused with a 429

Sample = tuple[str, dict[str, str], float]


# --- helpers -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _parse(text: str) -> list[Sample]:
    from prometheus_client.parser import text_string_to_metric_families

    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def _value(scrape: list[Sample], name: str, **labels: str) -> float | None:
    """The sum of the samples called `name` with these labels (None: there is none)."""
    found = [v for n, ls, v in scrape if n == name and labels.items() <= ls.items()]
    return sum(found) if found else None


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=BOUND)) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def _scrape_until(
    session: aiohttp.ClientSession,
    url: str,
    ready: Callable[[list[Sample]], bool],
    explain: Callable[[], str] = str,
) -> list[Sample]:
    """Scrape `url` until `ready` holds for what it shows (or fail, after BOUND seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BOUND
    while True:
        status, _, text = await _get(session, url)
        scrape = _parse(text) if status == 200 else []
        if ready(scrape):
            return scrape
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for the metrics; last scrape:\n{text}\n{explain()}")
        await asyncio.sleep(0.1)


def _alert_links(api: FakeBotAPI, chat_id: int) -> list[str]:
    """Each alerted post's link, once per message (several alerts may share a message)."""
    return [
        link
        for message in api.sent_to(chat_id)
        for link in dict.fromkeys(re.findall(r'href="(https://t\.me/milinfo/\d+)"', message.text))
    ]


@contextlib.asynccontextmanager
async def _endpoint(metrics: Metrics, health: Health) -> AsyncIterator[str]:
    endpoint = MetricsEndpoint(metrics, health)
    await endpoint.start("127.0.0.1", 0)
    assert endpoint.address is not None
    try:
        yield f"http://127.0.0.1:{endpoint.address[1]}"
    finally:
        await endpoint.stop()


# --- the whole service ---------------------------------------------------------------


async def test_metrics_count_what_a_run_did(tmp_path: Path, api: FakeBotAPI) -> None:
    port = _free_port()
    env = _env(tmp_path, api.base_url) | {"METRICS_PORT": str(port), "METRICS_HOST": "127.0.0.1"}
    storage = await SqliteStorage.open(env["DOZOR_DB"])
    for chat_id, query in ((READER, "Oreshnik"), (OTHER, "Kalibr")):
        await storage.upsert_subscriber(chat_id, "reader")
        assert await storage.add_subscription(chat_id, query) is not None
    await storage.close()
    posts = tmp_path / "posts.jsonl"
    posts.write_text("", encoding="utf-8")
    service = Service(env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        await service.start(wait=ANSWERING)
        assert f"metrics on {base}/metrics" in service.since_start()
        async with aiohttp.ClientSession() as session:
            # Running (the log says so): healthy.
            assert await _get(session, f"{base}/healthz") == (
                200,
                "text/plain; charset=utf-8",
                "ok\n",
            )

            # The first send to OTHER is refused: Telegram asks to wait a second.
            api.fail_next(
                "sendMessage",
                status=429,
                description="Too Many Requests: retry after 1",
                retry_after=1,
                chat_id=OTHER,
            )
            texts = [
                "Oreshnik convoy spotted near the border",
                "Weather: snow and ice on the roads",
                "Budget hearing questions the cost of Oreshnik",
                "Kalibr launches reported from the sea",
                "Second Oreshnik regiment formed, officials say",
            ]
            with posts.open("a", encoding="utf-8") as handle:
                for number, text in enumerate(texts, start=1):
                    handle.write(_post(number, text))
            expected = {
                READER: [f"https://t.me/milinfo/{n}" for n in (1, 3, 5)],
                OTHER: ["https://t.me/milinfo/4"],
            }

            def delivered(scrape: list[Sample]) -> bool:
                return (
                    all(sorted(_alert_links(api, c)) == links for c, links in expected.items())
                    and _value(scrape, "dozor_outbox_sent_total", kind="alert") == 4
                    and _value(scrape, "dozor_outbox_pending") == 0
                )

            scrape = await _scrape_until(session, f"{base}/metrics", delivered, service.tail)
            status, content_type, _ = await _get(session, f"{base}/metrics")
            assert status == 200
            assert content_type.startswith("text/plain; version=0.0.4")

        (source,) = {ls["source"] for n, ls, _ in scrape if n == "dozor_posts_ingested_total"}
        assert source.startswith("jsonl:")
        assert source.endswith("posts.jsonl")
        assert _value(scrape, "dozor_posts_ingested_total", source=source) == len(texts)
        assert _value(scrape, "dozor_matches_total") == 4
        assert _value(scrape, "dozor_alerts_queued_total") == 4
        messages = len(api.sent_to(READER)) + len(api.sent_to(OTHER))
        assert _value(scrape, "dozor_outbox_messages_sent_total") == messages
        assert _value(scrape, "dozor_send_seconds_count") == messages
        assert _value(scrape, "dozor_outbox_sent_total", kind="digest") == 0
        refused = [call for call in api.rejected if call.status == 429]
        assert len(refused) == 1
        assert _value(scrape, "dozor_telegram_429_total") == len(refused)
        assert _value(scrape, "dozor_outbox_retried_total") == 1  # OTHER's one alert
        assert _value(scrape, "dozor_outbox_set_aside_total") == 0
        assert _value(scrape, "dozor_outbox_oldest_pending_age_seconds") == 0
        assert _value(scrape, "dozor_outbox_due") == 0
        last_ok = _value(scrape, "dozor_source_last_success_timestamp_seconds", source=source)
        assert last_ok is not None
        assert last_ok > 0
        lag = _value(scrape, "dozor_source_lag_seconds", source=source)
        assert lag is not None
        assert lag >= 0
        assert _value(scrape, "dozor_leader") == 1
        assert _value(scrape, "dozor_healthy") == 1
        for part in ("outbox", "sources"):
            beat = _value(scrape, "dozor_heartbeat_timestamp_seconds", part=part)
            assert beat is not None
            assert beat > 0
        assert await service.terminate() == 0
    finally:
        if service.process is not None and service.process.returncode is None:
            await service.kill()


async def test_a_taken_metrics_port_stops_the_start(tmp_path: Path, api: FakeBotAPI) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        env = _env(tmp_path, api.base_url) | {
            "METRICS_PORT": str(port),
            "METRICS_HOST": "127.0.0.1",
        }
        code, output = await _run_cli_async(env, tmp_path, "run")
    assert code == 2
    problems = [line for line in output.splitlines() if line.startswith("dozor:")]
    assert problems == [
        f"dozor: METRICS_PORT: cannot serve metrics on 127.0.0.1:{port} (Address already in"
        " use); free the port, or set another METRICS_PORT or METRICS_HOST"
    ]
    assert "Dozor is running" not in output
    assert not [call for call in api.calls if call[0] == "getMe"]  # it never got that far


# --- health, in process --------------------------------------------------------------


async def test_healthz_follows_the_tasks_and_says_why_it_fails() -> None:
    metrics = Metrics()
    health = Health(metrics)
    leading = asyncio.Event()
    fail = asyncio.Event()

    async def sources() -> None:
        await asyncio.Event().wait()

    async def outbox() -> None:  # a follower's: waits to lead, which is healthy
        await leading.wait()
        await fail.wait()
        raise RuntimeError("secret details stay out of /healthz")

    async def polling() -> None:
        await leading.wait()
        await asyncio.Event().wait()

    async with _endpoint(metrics, health) as base, aiohttp.ClientSession() as session:
        assert await _get(session, f"{base}/healthz") == (
            503,
            "text/plain; charset=utf-8",
            "starting\n",
        )
        tasks = [
            asyncio.create_task(sources(), name="sources"),
            asyncio.create_task(outbox(), name="outbox"),
            asyncio.create_task(polling(), name="polling"),
        ]
        try:
            health.watch(tasks)
            assert (await _get(session, f"{base}/healthz"))[::2] == (200, "ok\n")
            leading.set()
            assert (await _get(session, f"{base}/healthz"))[::2] == (200, "ok\n")
            status, _, text = await _get(session, f"{base}/metrics")
            assert status == 200
            assert _value(_parse(text), "dozor_healthy") == 1

            fail.set()  # the outbox dies; the process has not exited yet
            await asyncio.wait([tasks[1]])
            assert (await _get(session, f"{base}/healthz"))[::2] == (
                503,
                "outbox stopped (RuntimeError)\n",
            )
            _, _, text = await _get(session, f"{base}/metrics")
            assert _value(_parse(text), "dozor_healthy") == 0

            health.stopping()
            assert (await _get(session, f"{base}/healthz"))[::2] == (503, "stopping\n")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_cancelled_task_and_a_task_that_returned_are_named() -> None:
    health = Health(Metrics())

    async def done() -> None:
        return None

    returned = asyncio.create_task(done(), name="following")
    await returned
    health.watch([returned])
    assert health.problem() == "following stopped"
    cancelled = asyncio.create_task(asyncio.Event().wait(), name="polling")
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    health.watch([cancelled])
    assert health.problem() == "polling was cancelled"


def test_a_part_that_stops_reporting_is_stuck() -> None:
    now = [1000.0]
    metrics = Metrics(clock=lambda: now[0])
    health = Health(metrics)
    health.watch([])
    assert health.problem() is None  # a part that never reported is not expected to
    metrics.beat("outbox")
    metrics.beat("sources", within=HEARTBEAT_BOUND * 2)
    now[0] += HEARTBEAT_BOUND
    assert health.problem() is None  # on the bound: still fine
    now[0] += 1
    assert health.problem() == f"outbox has not reported for {HEARTBEAT_BOUND + 1:.0f} s"
    metrics.beat("outbox")
    assert health.problem() is None
    now[0] += HEARTBEAT_BOUND * 2
    assert health.problem() == (
        f"outbox has not reported for {HEARTBEAT_BOUND * 2:.0f} s"
    )  # the first in name order
    metrics.beat("outbox")
    assert health.problem() == f"sources has not reported for {HEARTBEAT_BOUND * 3 + 1:.0f} s"


def test_services_in_one_process_keep_their_own_metrics() -> None:
    first, second = Metrics(), Metrics()
    first.matches.inc(3)
    assert first.registry.get_sample_value("dozor_matches_total") == 3
    assert second.registry.get_sample_value("dozor_matches_total") == 0


# --- the instrumented parts, in process ----------------------------------------------


def _fast() -> Pacer:
    return Pacer(rate=1000, private_interval=0.0, group_interval=0.0)


async def test_the_sender_counts_every_429(api: FakeBotAPI, bot: Bot) -> None:
    metrics = Metrics()
    sender = TelegramSender(bot, _fast(), metrics=metrics)
    api.fail_next(
        "sendMessage", status=429, description="Too Many Requests: retry after 1", retry_after=1
    )
    result = await sender.send(7, "hello")
    assert result.status == "retry"
    assert metrics.registry.get_sample_value("dozor_telegram_429_total") == 1
    # A call the pacer does not pace (no message is sent) is counted too.
    api.fail_next(
        "getChat", status=429, description="Too Many Requests: retry after 1", retry_after=1
    )
    with pytest.raises(TelegramRetryAfter):
        await bot.get_chat(7)
    assert metrics.registry.get_sample_value("dozor_telegram_429_total") == 2


async def _queue_alert(storage: Storage, chats: list[int], post_id: str) -> None:
    matches = []
    for chat_id in chats:
        await storage.upsert_subscriber(chat_id, "user")
        subscription = await storage.add_subscription(chat_id, "Oreshnik")
        assert subscription is not None
        matches.append(MatchRecord(subscription.id, chat_id, "Oreshnik", (Span(0, 8),)))
    text = f"Oreshnik report {post_id}"
    post = Post("jsonl", "milinfo", post_id, datetime.now(UTC), text, "https://t.me/m/1")
    await storage.save_post(post, matches)


async def test_the_outbox_counts_sent_and_set_aside(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    metrics = Metrics()
    sender = TelegramSender(bot, _fast(), metrics=metrics)
    worker = OutboxWorker(storage, sender, UTC, asyncio.Event(), metrics=metrics)
    await _queue_alert(storage, [7, 8], "1")
    api.block_chat(7)
    assert await worker.send_due() == 1

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert sample("dozor_outbox_sent_total", kind="alert") == 1
    assert sample("dozor_outbox_messages_sent_total") == 1
    assert sample("dozor_send_seconds_count") == 1
    assert sample("dozor_outbox_set_aside_total", reason="blocked") == 1
    assert sample("dozor_outbox_set_aside_total", reason="rejected") == 0
    assert sample("dozor_outbox_retried_total") == 0
    await metrics.refresh_outbox(storage)
    assert sample("dozor_outbox_pending") == 0
    assert sample("dozor_outbox_oldest_pending_age_seconds") == 0


# --- the deploy files ----------------------------------------------------------------


def _known_metrics() -> set[str]:
    """Every series name the service exports (a counter's `_total`, a histogram's parts)."""
    names = set()
    for family in Metrics().registry.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_count", "_sum"),
        }.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def _named_metrics(expr: str) -> set[str]:
    return set(re.findall(r"\bdozor_[a-z0-9_]+", expr))


def test_the_dashboard_is_a_grafana_model_of_existing_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    for panel in panels:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    named = set().union(*map(_named_metrics, exprs))
    assert named <= _known_metrics()
    # Every metric the service exports has a panel.
    exported = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in _known_metrics()}
    shown = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in named}
    assert exported - shown == set()


def test_the_alert_rules_parse_and_watch_what_was_asked() -> None:
    text = (DEPLOY / "alert-rules.yaml").read_text(encoding="utf-8")
    rules_file = _load_yaml(text)
    (group,) = rules_file["groups"]
    rules = {rule["alert"]: rule for rule in group["rules"]}
    assert {
        "DozorDown",
        "DozorUnhealthy",
        "DozorSourceSilent",
        "DozorOutboxStuck",
        "DozorTelegram429Storm",
    } <= rules.keys()
    for name, rule in rules.items():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, name
        assert isinstance(rule["expr"], str)
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"], name
        assert _named_metrics(rule["expr"]) <= _known_metrics(), name
        assert rule["expr"].count("(") == rule["expr"].count(")"), name
    assert "dozor_outbox_oldest_pending_age_seconds" in rules["DozorOutboxStuck"]["expr"]
    assert "15 * 60" in rules["DozorOutboxStuck"]["expr"]
    assert "dozor_telegram_429_total" in rules["DozorTelegram429Storm"]["expr"]
    assert "up{" in rules["DozorDown"]["expr"]


def test_compose_checks_health_with_the_standard_library() -> None:
    compose = _load_yaml((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    for name in ("dozor", "worker"):
        service = compose["services"][name]
        port = service["environment"]["METRICS_PORT"]
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], name
        assert f"'http://127.0.0.1:{port}/healthz'" in test[3], name
        compile(test[3], "healthcheck", "exec")  # valid Python
        assert "ports" not in service, name  # not published by default
    assert "ports" not in compose["services"]["postgres"]


def _load_yaml(text: str) -> Any:
    return yaml.safe_load(text)


async def test_healthz_is_503_while_the_bot_api_cannot_be_reached(tmp_path: Path) -> None:
    """Polling is alive but useless while getMe fails: /healthz says why, and turns 200 once
    the Bot API answers where it was expected."""
    broken = await asyncio.start_server(_garbage_http, "127.0.0.1", 0, reuse_address=True)
    api_port = broken.sockets[0].getsockname()[1]  # held from here on: no other test takes it
    port = _free_port()
    env = _env(tmp_path, f"http://127.0.0.1:{api_port}") | {
        "METRICS_PORT": str(port),
        "METRICS_HOST": "127.0.0.1",
    }
    service = Service(env, tmp_path)
    health = f"http://127.0.0.1:{port}/healthz"
    try:
        await service.start(wait="cannot reach the Bot API")
        async with aiohttp.ClientSession() as session:
            status, _, reason = await _get(session, health)
            assert status == 503
            assert reason.strip() == "polling: cannot reach the Bot API (TelegramNetworkError)"
            broken.close()
            await broken.wait_closed()
            async with FakeBotAPI() as api:
                await api.stop()
                await api.start(api_port)  # the Bot API comes back
                await service.wait_log("connected to the Bot API as @")
                status, _, reason = await _get(session, health)
                assert (status, reason) == (200, "ok\n")
                assert await service.terminate() == 0
    finally:
        broken.close()
        if service.process is not None and service.process.returncode is None:
            await service.kill()
