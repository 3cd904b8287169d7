"""The one polling loop: rhythm with jitter, per-host limits, back-off, health in SQLite.

The sources here are small probes that make a real HTTP request through the poller's shared
session to a server on loopback; health goes through the real SourceFeed into a real file.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import pytest
from aiohttp import web

from bot.domain import SourceSpec
from bot.ingest import Ingest, Matcher, SourceFeed
from bot.sources.base import Feed, RetryLater, SourceStopped
from bot.sources.http import fetch
from bot.sources.polling import (
    BACKOFF_CAP,
    BACKOFF_FIRST,
    PolledSource,
    Poller,
    error_delay,
    jittered,
)
from bot.sources.supervisor import STOPPED_DELAY
from bot.storage import Storage
from tests.loopback import LoopbackServer


class ProbeServer(LoopbackServer):
    """Answers every GET after `delay` seconds; counts requests and the most at once."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.requests: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.gate = 0  # with N, hold each answer until N requests are in flight (or 30 s)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            for _ in range(3000):
                if self.most_in_flight >= self.gate:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        return web.Response(text="ok")

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/{name}", self.handle)


class HostLoad:
    """Polls in progress per host, and the most at once: what the Poller bounds."""

    def __init__(self) -> None:
        self.now: dict[str, int] = {}
        self.most: dict[str, int] = {}

    @contextlib.contextmanager
    def polling(self, host: str) -> Iterator[None]:
        self.now[host] = self.now.get(host, 0) + 1
        self.most[host] = max(self.most.get(host, 0), self.now[host])
        try:
            yield
        finally:
            self.now[host] -= 1


class Probe:
    """A polled source that GETs `<base>/<name>`, then does what `outcome` says."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        interval: float = 0.05,
        host: str = "news.example",
        outcome: Callable[[int], Awaitable[None]] | None = None,
        load: HostLoad | None = None,
    ) -> None:
        self.spec = SourceSpec("rss", f"{base_url}/{name}")
        self._load = load or HostLoad()
        self.interval = interval
        self._host = host
        self.polls = 0
        self._outcome = outcome

    @property
    def host(self) -> str:
        return self._host

    async def poll(self, session: aiohttp.ClientSession, feed: Feed) -> int:
        self.polls += 1
        with self._load.polling(self._host):
            answer = await fetch(session, self.spec.target, time_limit=60, max_bytes=1000)
        assert answer.status == 200
        if self._outcome is not None:
            await self._outcome(self.polls)
        return 0


@pytest.fixture
async def server() -> AsyncIterator[ProbeServer]:
    async with ProbeServer() as probe_server:
        yield probe_server


async def _feed(storage: Storage, source: Probe) -> SourceFeed:
    source_id = await storage.ensure_source(source.spec.text, source.spec.kind)
    return SourceFeed(Ingest(storage, Matcher(storage), asyncio.Event()), storage, source_id)


async def _until(condition: Callable[[], bool], tries: int = 6000) -> None:
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def _running(poller: Poller) -> asyncio.Task[None]:
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(0)
    return task


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_probe_is_a_polled_source() -> None:
    assert isinstance(Probe("a", "http://x"), PolledSource)


def test_jitter_spreads_polls_within_bounds() -> None:
    delays = [jittered(300) for _ in range(500)]
    assert all(240 <= delay <= 360 for delay in delays)
    assert len({round(delay) for delay in delays}) > 20


def test_error_delay_doubles_and_is_capped() -> None:
    # Slow rhythm: first retry after a minute, doubling, at most an hour (±10% jitter).
    expected = [60, 120, 240, 480, 960, 1920, 3600, 3600]
    for failures, base in enumerate(expected, start=1):
        assert base * 0.9 <= error_delay(failures, 300) <= base * 1.1
    assert error_delay(1, 300) <= BACKOFF_FIRST * 1.1
    assert error_delay(50, 300) <= BACKOFF_CAP * 1.1
    # A fast rhythm retries sooner; a rhythm slower than the cap is never polled faster.
    assert error_delay(1, 10) <= 11
    assert error_delay(20, 86_400) >= 86_400 * 0.9


async def test_polls_every_source_on_its_own_rhythm(storage: Storage, server: ProbeServer) -> None:
    fast = Probe("fast", server.base_url, interval=0.03)
    slow = Probe("slow", server.base_url, interval=0.5)
    poller = Poller(start_spread=0.01)
    poller.add(fast, await _feed(storage, fast))
    poller.add(slow, await _feed(storage, slow))
    task = await _running(poller)
    try:
        await _until(lambda: fast.polls >= 6)
    finally:
        await _stop(task)
    assert slow.polls >= 1
    assert fast.polls > slow.polls
    assert sorted(set(server.requests)) == ["/fast", "/slow"]


async def test_first_polls_are_spread_out() -> None:
    poller = Poller(start_spread=30)
    sources = [Probe(f"feed{i}", "http://127.0.0.1:9") for i in range(40)]
    for source in sources:
        source.interval = 600
        poller.add(source, None)  # type: ignore[arg-type]  # never polled: not running
    waits = [poller.next_poll_in(source.spec.text) or 0.0 for source in sources]
    assert all(0 <= wait <= 30 for wait in waits)
    assert max(waits) - min(waits) > 10  # spread out, not all at once


async def test_at_most_per_host_requests_at_once(storage: Storage) -> None:
    # Counted where the requests are made (a server-side count can also see a request the
    # client already gave up on, on a machine loaded enough to time it out).
    load = HostLoad()
    async with ProbeServer(delay=0.1) as slow_server:
        same_host = [
            Probe(f"a{i}", slow_server.base_url, interval=60, load=load) for i in range(5)
        ]
        poller = Poller(per_host=2, start_spread=0.001)
        for source in same_host:
            poller.add(source, await _feed(storage, source))
        task = await _running(poller)
        try:
            await _until(lambda: all(source.polls for source in same_host))
            await _until(lambda: slow_server.in_flight == 0)
        finally:
            await _stop(task)
        assert load.most == {"news.example": 2}

        # Another host has its own allowance.
        other = [
            Probe(f"b{i}", slow_server.base_url, interval=60, host=f"host{i % 2}", load=load)
            for i in range(4)
        ]
        # Answers wait until two requests are in: only separate allowances get there.
        slow_server.most_in_flight, slow_server.gate = 0, 2
        poller = Poller(per_host=1, start_spread=0.001)
        for source in other:
            poller.add(source, await _feed(storage, source))
        task = await _running(poller)
        try:
            await _until(lambda: all(source.polls for source in other))
        finally:
            await _stop(task)
        assert load.most == {"news.example": 2, "host0": 1, "host1": 1}
        # The two hosts were asked at once (a shared allowance would never open the gate).
        # At least, not exactly: the server can also count a request the client retried.
        assert slow_server.most_in_flight >= 2


async def _health(storage: Storage, spec: str) -> tuple[int, str | None, bool]:
    info = next(info for info in await storage.list_sources() if info.spec == spec)
    return info.failures, info.last_error, info.last_ok_at is not None


async def test_outcomes_set_the_next_poll_and_are_stored(
    storage: Storage, server: ProbeServer
) -> None:
    script: list[Exception | None] = [
        RuntimeError("feed answered garbage"),
        RuntimeError("feed answered garbage"),
        RetryLater("rate limit reached", 120),
        None,
    ]

    async def outcome(poll: int) -> None:
        problem = script[poll - 1]
        if problem is not None:
            raise problem

    source = Probe("feed", server.base_url, interval=1000, outcome=outcome)
    spec = source.spec.text
    poller = Poller(start_spread=0.001)
    poller.add(source, await _feed(storage, source))
    task = await _running(poller)
    try:
        waits: list[float] = []
        for poll in range(1, 5):
            await _until(lambda poll=poll: source.polls == poll)  # type: ignore[misc]
            await _until(lambda: poller.next_poll_in(spec) is not None)
            waits.append(poller.next_poll_in(spec) or 0.0)
            health = await _health(storage, spec)
            if poll == 2:
                assert health[:2] == (2, "RuntimeError: feed answered garbage")
            if poll == 3:
                assert health[1] == "RetryLater: rate limit reached"
            poller.poll_now(spec)  # instead of waiting for it
    finally:
        await _stop(task)
    first, second, limited, healthy = waits
    assert BACKOFF_FIRST * 0.85 <= first <= BACKOFF_FIRST * 1.1
    assert 2 * BACKOFF_FIRST * 0.85 <= second <= 2 * BACKOFF_FIRST * 1.1
    assert 115 <= limited <= 125  # the server's wait, not the back-off
    assert 750 <= healthy <= 1200  # back on its rhythm
    failures, _, read_ok = await _health(storage, spec)
    assert failures == 0
    assert read_ok


async def test_a_stopped_source_is_reported_once_and_retried_hourly(
    storage: Storage, server: ProbeServer
) -> None:
    async def refuse(poll: int) -> None:
        raise SourceStopped("X API refused the token (HTTP 401)")

    told: list[tuple[str, str]] = []

    async def on_stopped(spec: str, problem: str) -> None:
        told.append((spec, problem))

    source = Probe("x", server.base_url, interval=300, outcome=refuse)
    spec = source.spec.text
    poller = Poller(start_spread=0.001, on_stopped=on_stopped)
    poller.add(source, await _feed(storage, source))
    task = await _running(poller)
    try:
        for poll in (1, 2):
            await _until(lambda poll=poll: source.polls == poll)  # type: ignore[misc]
            await _until(lambda: poller.next_poll_in(spec) is not None)
            assert STOPPED_DELAY * 0.99 <= (poller.next_poll_in(spec) or 0) <= STOPPED_DELAY
            poller.poll_now(spec)
    finally:
        await _stop(task)
    assert told == [(spec, "X API refused the token (HTTP 401)")]
    failures, error, _ = await _health(storage, spec)
    assert failures == 2
    assert error == "SourceStopped: X API refused the token (HTTP 401)"


async def test_a_health_write_failure_does_not_stop_polling(server: ProbeServer) -> None:
    class BrokenHealth:
        async def succeeded(self) -> None:
            raise RuntimeError("database is locked")

        async def failed(self, error: str) -> None:
            raise RuntimeError("database is locked")

    source = Probe("feed", server.base_url, interval=0.02)
    poller = Poller(start_spread=0.001)
    poller.add(source, BrokenHealth())  # type: ignore[arg-type]
    task = await _running(poller)
    try:
        await _until(lambda: source.polls >= 3)
    finally:
        await _stop(task)


async def test_removed_sources_stop_and_added_ones_start(
    storage: Storage, server: ProbeServer
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def hang(poll: int) -> None:
        started.set()
        await release.wait()

    hanging = Probe("hanging", server.base_url, interval=0.02, outcome=hang)
    poller = Poller(start_spread=0.001)
    poller.add(hanging, await _feed(storage, hanging))
    task = await _running(poller)
    try:
        await asyncio.wait_for(started.wait(), 30)
        await poller.remove(hanging.spec.text)  # cancels the poll in flight
        assert hanging.spec.text not in poller
        late = Probe("late", server.base_url, interval=0.02)
        poller.add(late, await _feed(storage, late))  # wakes the loop at once
        await _until(lambda: late.polls >= 2)
        assert hanging.polls == 1
    finally:
        await _stop(task)
    assert poller.specs == [late.spec.text]


def test_per_host_must_be_positive() -> None:
    with pytest.raises(ValueError, match="per_host"):
        Poller(per_host=0)
