"""What a polled source is (tgweb, x, rss), and the one loop that polls them all.

A polled source reads its place once per `poll()` and hands new posts to its feed. The
`Poller` decides when: every source on its own rhythm with jitter, so requests spread out;
a few requests per host at a time; exponential back-off per source on errors; the wait a
server asked for on a rate limit. Every outcome is recorded as the source's health.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import aiohttp

from bot.domain import SourceSpec
from bot.logs import log_context
from bot.sources.base import Feed
from bot.sources.supervisor import FailureStreak, backoff_delay

log = logging.getLogger(__name__)


@runtime_checkable
class PolledSource(Protocol):
    """A source read by polling: the `Poller` calls `poll` on the source's rhythm."""

    spec: SourceSpec
    interval: float  # seconds between polls while healthy

    @property
    def host(self) -> str:
        """The host it requests (per-host concurrency is counted by this)."""
        ...

    async def poll(self, session: aiohttp.ClientSession, feed: Feed) -> int:
        """Read once, deliver what is new in order; returns how many new posts.

        Raises SourceStopped for problems a retry will not fix soon (401, a deleted account),
        RetryLater for a server-imposed wait, and any other exception for a failure worth
        retrying with back-off.
        """
        ...


def jittered(interval: float, jitter: float = 0.2) -> float:
    """`interval` spread by ±`jitter`, so sources with one rhythm do not poll in lockstep."""
    factor: float = random.uniform(1 - jitter, 1 + jitter)
    return interval * factor


async def poll_forever(
    source: PolledSource,
    feed: Feed,
    *,
    once: bool = False,
    session_factory: Callable[[], aiohttp.ClientSession] = aiohttp.ClientSession,
) -> None:
    """Poll one source on its own (a standalone `run()`; the service uses the Poller)."""
    async with session_factory() as session:
        while True:
            await source.poll(session, feed)
            if once:
                return
            await asyncio.sleep(jittered(source.interval))


class PollFeed(Feed, Protocol):
    """A feed that also records failures as the source's health (SourceFeed is one)."""

    async def failed(self, error: str, *, stopped: bool = False) -> None:
        """The source could not be read; `error` is a one-line reason. `stopped`: a retry
        will not fix it soon (SourceStopped)."""
        ...


BACKOFF_FIRST = 60.0  # the first retry after an error, unless the source's rhythm is faster
BACKOFF_CAP = 3600.0  # a failing source is still tried at least hourly
START_SPREAD = 30.0  # first polls after start are spread over this many seconds


def error_delay(failures: int, interval: float) -> float:
    """Seconds before retrying after the n-th consecutive failure: doubling, capped, jittered."""
    return backoff_delay(
        failures, first=min(interval, BACKOFF_FIRST), cap=max(interval, BACKOFF_CAP)
    )


@dataclass(slots=True)
class _Polled:
    source: PolledSource
    feed: PollFeed
    due: float
    failures: FailureStreak
    task: asyncio.Task[None] | None = None


class Poller:
    """Polls every added source on its own rhythm, from one loop and one HTTP session."""

    def __init__(
        self,
        *,
        per_host: int = 2,
        session_factory: Callable[[], aiohttp.ClientSession] = aiohttp.ClientSession,
        on_stopped: Callable[[str, str], Awaitable[None]] | None = None,
        start_spread: float = START_SPREAD,
    ) -> None:
        if per_host < 1:
            raise ValueError("per_host must be at least 1")
        self._per_host = per_host
        self._session_factory = session_factory
        self._on_stopped = on_stopped
        self._start_spread = start_spread
        self._sources: dict[str, _Polled] = {}
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._wake = asyncio.Event()

    def __contains__(self, spec: object) -> bool:
        return spec in self._sources

    @property
    def specs(self) -> list[str]:
        return sorted(self._sources)

    def add(self, source: PolledSource, feed: PollFeed) -> None:
        """Start polling a source; its first poll comes within the start spread (jittered)."""
        spread = min(source.interval, self._start_spread)
        due = _now() + random.uniform(0, spread)
        failures = FailureStreak(
            source.spec.text,
            lambda error, stopped: feed.failed(error, stopped=stopped),
            on_stopped=self._on_stopped,
            backoff=functools.partial(error_delay, interval=source.interval),
        )
        self._sources[source.spec.text] = _Polled(source, feed, due, failures)
        self._wake.set()

    async def remove(self, spec: str) -> None:
        """Stop polling a source, cancelling a poll in flight."""
        entry = self._sources.pop(spec, None)
        if entry is not None and entry.task is not None:
            entry.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await entry.task

    def poll_now(self, spec: str) -> None:
        """Make a source's next poll due at once (no effect while it is polling)."""
        entry = self._sources.get(spec)
        if entry is not None:
            entry.due = _now()
            self._wake.set()

    def next_poll_in(self, spec: str) -> float | None:
        """Seconds until the source's next poll (None when it is not polled or is polling)."""
        entry = self._sources.get(spec)
        if entry is None or entry.task is not None:
            return None
        return max(0.0, entry.due - _now())

    async def run(self) -> None:
        """Poll until cancelled; in-flight polls are cancelled with it."""
        async with self._session_factory() as session:
            try:
                while True:
                    self._wake.clear()
                    now = _now()
                    waits: list[float] = []
                    for entry in self._sources.values():
                        if entry.task is not None:
                            continue
                        if entry.due <= now:
                            with log_context(source=entry.source.spec.text):
                                entry.task = asyncio.create_task(
                                    self._poll(entry, session), name=f"poll {entry.source.spec}"
                                )
                        else:
                            waits.append(entry.due - now)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(min(waits, default=None)):
                            await self._wake.wait()
            finally:
                tasks = [e.task for e in self._sources.values() if e.task is not None]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _poll(self, entry: _Polled, session: aiohttp.ClientSession) -> None:
        source, spec = entry.source, entry.source.spec.text
        semaphore = self._hosts.setdefault(source.host, asyncio.Semaphore(self._per_host))
        try:
            async with semaphore:
                delay = await self._poll_once(entry, session)
            entry.due = _now() + delay
        finally:
            entry.task = None
            if self._sources.get(spec) is entry:
                self._wake.set()

    async def _poll_once(self, entry: _Polled, session: aiohttp.ClientSession) -> float:
        """Poll and record the outcome; returns the seconds until the next poll."""
        try:
            await entry.source.poll(session, entry.feed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return await entry.failures.failed(exc)
        entry.failures.reset()
        try:
            await entry.feed.succeeded()
        except Exception:  # a database hiccup must not stop polling
            log.exception("could not record a source's health")
        return jittered(entry.source.interval)


def _now() -> float:
    return asyncio.get_running_loop().time()
