"""Three `dozor run` workers on one PostgreSQL database, two of them killed in turn.

Three followed files stream posts; 300 subscribers each track one of ten terms, so every post
alerts 30 chats. The leader (commands, sending) is killed with -9 mid-stream, then the worker
that took its place. Afterwards every alert was delivered, none more than once beyond the
messages in flight at each kill, each source was read by one live worker at a time, and the
stand-in Bot API (enforcing Telegram's limits) never had to refuse a message.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from bot.delivery.outbox import CONCURRENCY
from bot.storage.postgres import PostgresStorage
from tests.botapi import FakeBotAPI
from tests.contract.conftest import _empty_tables
from tests.test_process import Service, _env, _until

TERMS = (
    "Oreshnik",
    "Sarmat",
    "Kinzhal",
    "Iskander",
    "Burevestnik",
    "Poseidon",
    "Avangard",
    "Tsirkon",
    "Kalibr",
    "Yars",
)
CHATS = range(2001, 2301)  # 300 subscribers, 30 per term
SOURCES = 3
LEADING = "answering commands"
RUNNING = "Dozor is running"


def _record(source: int, number: int) -> str:
    import json
    from datetime import UTC, datetime

    term = TERMS[number % len(TERMS)]
    record = {
        "channel": f"feed{source}",
        "id": number,
        "date": datetime.now(UTC).isoformat(),
        "text": f"Report {number}: {term} seen at the range",
        "url": f"https://t.me/feed{source}/{number}",
    }
    return json.dumps(record) + "\n"


class Delivered:
    """(chat, post link) pairs in the messages the stand-in accepted, counted as they come:
    the test looks every 50 ms, and reading every message again each time would hold up the
    stand-in's event loop, which stamps the very messages whose pace it checks."""

    def __init__(self, api: FakeBotAPI) -> None:
        self._api = api
        self._read = 0
        self.pairs: Counter[tuple[int, str]] = Counter()

    def __call__(self) -> Counter[tuple[int, str]]:
        sent = self._api.sent
        for message in sent[self._read :]:
            for link in set(re.findall(r'href="(https://t\.me/feed\d/\d+)"', message.text)):
                self.pairs[(message.chat_id, link)] += 1
        self._read = len(sent)
        return self.pairs


@pytest.fixture
async def workers(
    tmp_path: Path, api: FakeBotAPI, postgres_url: str
) -> AsyncIterator[list[Service]]:
    await _empty_tables(postgres_url)
    db = await PostgresStorage.open(postgres_url)
    try:
        for chat_id in CHATS:
            await db.upsert_subscriber(chat_id, f"reader {chat_id}")
            await db.add_subscription(chat_id, TERMS[chat_id % len(TERMS)])
    finally:
        await db.close()
    files = [tmp_path / f"feed{n}.jsonl" for n in range(SOURCES)]
    for path in files:
        path.write_text("", encoding="utf-8")
    env = _env(tmp_path, api.base_url)
    env["DATABASE_URL"] = postgres_url
    env["SOURCES"] = ",".join(f"jsonl:{path}" for path in files)
    started = []
    for number in range(3):
        folder = tmp_path / f"worker{number}"
        folder.mkdir()
        started.append(Service(dict(env), folder))
    yield started
    for service in started:
        if service.process is not None and service.process.returncode is None:
            await service.kill()


def _leader(services: list[Service]) -> Service | None:
    alive = [s for s in services if s.process is not None and s.process.returncode is None]
    leading = [s for s in alive if LEADING in s.since_start()]
    assert len(leading) <= 1, "two workers lead at once"
    return leading[0] if leading else None


def _watching(service: Service) -> set[str]:
    return set(re.findall(r"watching (jsonl:\S+)", service.since_start()))


async def _state(url: str, missing: list[tuple[int, str]]) -> str:
    """What the database says of the alerts not delivered (for a failure's message)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT outbox.id, outbox.chat_id, posts.url, outbox.sent_at, outbox.failed_at,"
            " outbox.next_attempt_at, outbox.attempts, outbox.last_error, outbox.claimed_by,"
            " (SELECT first_id FROM outbox_queues AS q WHERE q.chat_id = outbox.chat_id"
            "  AND q.kind = outbox.kind) AS first_id"
            " FROM outbox JOIN posts ON posts.id = outbox.post_id"
            " WHERE (outbox.chat_id, posts.url) IN"
            " (SELECT * FROM unnest(%s::bigint[], %s::text[]))"
            " ORDER BY outbox.id",
            ([chat for chat, _ in missing], [url for _, url in missing]),
        )
        rows = await cursor.fetchall()
        cursor = await conn.execute(
            "SELECT (SELECT COUNT(*) FROM fresh_alerts), (SELECT array_agg(pid) FROM"
            " pg_stat_activity WHERE datname = current_database())"
        )
        fresh = await cursor.fetchone()
        cursor = await conn.execute(
            "SELECT posts.id, posts.channel, posts.post_id, posts.url, posts.stored_at,"
            " (SELECT COUNT(*) FROM matches WHERE matches.post_id = posts.id) AS matches,"
            " (SELECT COUNT(*) FROM outbox WHERE outbox.post_id = posts.id) AS messages"
            " FROM posts WHERE url = ANY(%s) OR post_id = ANY(%s) ORDER BY id",
            (
                sorted({url for _, url in missing}),
                sorted({url.rsplit("/", 1)[1] for _, url in missing}),
            ),
        )
        posts = await cursor.fetchall()
    lines = [f"{len(missing)} missing, e.g. {missing[:5]}; fresh rows, live pids: {fresh}"]
    lines += [repr(row) for row in rows[:20]]
    lines += ["posts:"] + [repr(row) for row in posts]
    return "\n".join(lines)


async def test_three_workers_share_the_work_and_survive_two_kills(
    workers: list[Service], api: FakeBotAPI, tmp_path: Path, postgres_url: str
) -> None:
    api.enforce_limits()
    _delivered = Delivered(api)
    for service in workers:
        await service.start(wait=None)
    for service in workers:
        await service.wait_log(RUNNING)
    await _until(lambda: _leader(workers) is not None, "a leader", None)
    specs = {f"jsonl:{tmp_path / f'feed{n}.jsonl'}" for n in range(SOURCES)}
    await _until(lambda: set().union(*map(_watching, workers)) == specs, "every source read", None)
    # Each source read by one worker: the sets are disjoint.
    assert sum(len(_watching(s)) for s in workers) == SOURCES

    def write(numbers: range) -> None:
        for number in numbers:
            with (tmp_path / f"feed{number % SOURCES}.jsonl").open("a") as handle:
                handle.write(_record(number % SOURCES, number))

    expected = {
        (chat_id, f"https://t.me/feed{number % SOURCES}/{number}")
        for number in range(12)
        for chat_id in CHATS
        if TERMS[chat_id % len(TERMS)] == TERMS[number % len(TERMS)]
    }
    assert len(expected) == 12 * 30

    write(range(0, 4))
    await _until(lambda: len(_delivered()) >= 40, "the first alerts", None)
    first = _leader(workers)
    assert first is not None
    await first.kill()  # mid-send
    write(range(4, 8))
    await _until(lambda: _leader(workers) not in (None, first), "a new leader", None)
    second = _leader(workers)
    assert second is not None
    await _until(lambda: len(_delivered()) >= 200, "more alerts", None)
    await second.kill()
    write(range(8, 12))
    (last,) = [s for s in workers if s not in (first, second)]
    await _until(lambda: LEADING in last.since_start(), "the last worker leading", last)
    await _until(lambda: _watching(last) == specs, "the last worker reading all", last)
    try:
        await _until(lambda: expected <= set(_delivered()), "every alert delivered", last)
    except pytest.fail.Exception as failed:
        missing = sorted(expected - set(_delivered()))
        raise AssertionError(f"{failed}\n{await _state(postgres_url, missing)}") from None

    delivered = _delivered()
    assert set(delivered) == expected  # nothing else
    repeated = sum(count - 1 for count in delivered.values())
    assert repeated <= 2 * CONCURRENCY  # at most what was in flight at each kill
    # Never over Telegram's limits, across the three.
    flood = api.flood_control
    assert api.limit_hits == 0, flood.refused if flood else None
    assert await last.terminate() == 0
