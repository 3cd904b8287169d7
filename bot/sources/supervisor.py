"""Runs every source in its own task; a failing source is retried with back-off, alone."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from bot.sources.base import Feed, Source, SourceStopped

log = logging.getLogger(__name__)

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0


def backoff_delay(
    failures: int, *, first: float = BACKOFF_FIRST, cap: float = BACKOFF_MAX
) -> float:
    """Seconds to wait after the n-th consecutive failure: doubling, capped, with 10% jitter."""
    base = min(cap, first * 2.0 ** max(0, failures - 1))
    jitter: float = random.uniform(0.9, 1.1)
    return base * jitter


STOPPED_DELAY = 3600.0  # a revoked session or a missing preview is not retried every minute


async def supervise(
    source: Source,
    feed: Feed,
    on_error: Callable[[str], Awaitable[None]],
    *,
    on_stopped: Callable[[str, str], Awaitable[None]] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Run a source until cancelled, restarting it after a failure so others never stop.

    A SourceStopped problem is recorded, reported once through `on_stopped` (to admins),
    and retried only after an hour, so it never becomes a crash loop.
    """
    failures = 0
    reported: str | None = None
    while True:
        try:
            await source.run(feed)
            return
        except asyncio.CancelledError:
            raise
        except SourceStopped as exc:
            failures += 1
            message = str(exc) or type(exc).__name__
            log.error("source %s stopped: %s; trying again in an hour", source.spec.text, message)
            await on_error(f"{type(exc).__name__}: {message}")
            if on_stopped is not None and reported != message:
                reported = message
                await on_stopped(source.spec.text, message)
            await sleep(STOPPED_DELAY)
        except Exception as exc:
            failures += 1
            delay = backoff_delay(failures)
            log.exception(
                "source %s failed (%d in a row); retrying in %.0fs",
                source.spec.text,
                failures,
                delay,
            )
            await on_error(f"{type(exc).__name__}: {exc}")
            await sleep(delay)
