"""What happens when a source fails, for every kind: the wait before the next try, the error
recorded as its health, a problem admins must fix told to them once. `supervise` runs a
streaming source (telegram, jsonl) in its own task with it; the Poller uses it for polled ones.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from bot.sources.base import Feed, RetryLater, Source, SourceStopped
from bot.sources.http import FetchError

log = logging.getLogger(__name__)

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0
STOPPED_DELAY = 3600.0  # a revoked session or a missing preview is not retried every minute
_EXPECTED = (FetchError,)  # errors whose one-line message says it all (no traceback)


def backoff_delay(
    failures: int, *, first: float = BACKOFF_FIRST, cap: float = BACKOFF_MAX
) -> float:
    """Seconds to wait after the n-th consecutive failure: doubling, capped, with 10% jitter."""
    base = min(cap, first * 2.0 ** max(0, failures - 1))
    jitter: float = random.uniform(0.9, 1.1)
    return base * jitter


class FailureStreak:
    """One source's consecutive failures: each is logged and recorded, and decides the wait.

    A RetryLater waits what the server asked and does not grow the back-off; a SourceStopped
    problem waits an hour and is told through `on_stopped` once (until it changes or the source
    recovers); anything else backs off by `backoff(failures)`.
    """

    def __init__(
        self,
        spec: str,
        record: Callable[[str, bool], Awaitable[None]],
        *,
        on_stopped: Callable[[str, str], Awaitable[None]] | None = None,
        backoff: Callable[[int], float] = backoff_delay,
    ) -> None:
        self.spec = spec
        self.count = 0
        self._record = record
        self._on_stopped = on_stopped
        self._backoff = backoff
        self._reported: str | None = None

    def reset(self) -> None:
        """The source worked: the streak is over."""
        self.count = 0
        self._reported = None

    async def failed(self, exc: Exception) -> float:
        """Log and record a failure; returns the seconds to wait before trying again."""
        if isinstance(exc, RetryLater):
            log.warning("%s: %s; next try in %.0f s", self.spec, exc, exc.delay)
            await self._tell(self._record(f"{type(exc).__name__}: {exc}", False))
            return exc.delay + random.uniform(0, 5)
        self.count += 1
        if isinstance(exc, SourceStopped):
            message = str(exc) or type(exc).__name__
            log.error("%s stopped: %s; trying again in an hour", self.spec, message)
            await self._tell(self._record(f"{type(exc).__name__}: {message}", True))
            if self._on_stopped is not None and self._reported != message:
                self._reported = message
                await self._tell(self._on_stopped(self.spec, message))
            return STOPPED_DELAY
        delay = self._backoff(self.count)
        log.warning(
            "%s failed (%d in a row): %s; next try in %.0f s",
            self.spec,
            self.count,
            exc,
            delay,
            exc_info=not isinstance(exc, _EXPECTED),
        )
        await self._tell(self._record(f"{type(exc).__name__}: {exc}", False))
        return delay

    @staticmethod
    async def _tell(outcome: Awaitable[None]) -> None:
        """Record or report; a database or network hiccup here must not stop the source."""
        try:
            await outcome
        except Exception:
            log.exception("could not record a source's failure")


async def supervise(
    source: Source,
    feed: Feed,
    on_error: Callable[[str, bool], Awaitable[None]],
    *,
    on_stopped: Callable[[str, str], Awaitable[None]] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Run a source until cancelled, restarting it after a failure so others never stop.

    `on_error(error, stopped)` records each failure (`stopped`: a SourceStopped problem).
    """
    streak = FailureStreak(source.spec.text, on_error, on_stopped=on_stopped)
    while True:
        try:
            await source.run(feed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await sleep(await streak.failed(exc))
        else:
            # A finite source (a file read to its end) completed its read.
            await FailureStreak._tell(feed.succeeded())
            return
