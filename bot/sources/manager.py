"""Runs the watched sources: one supervised task each, kept in step with the database.

Sources come from `SOURCES` at start, from admins in chat and from `dozor sources`; the
manager re-reads the list periodically, so a source added from the command line is picked
up by a running service too. Polled sources (tgweb, x, rss) share one `Poller` loop;
streaming ones (telegram, jsonl) run in a supervised task each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from bot.domain import SourceInfo, SourceSpec
from bot.i18n import Notify
from bot.ingest import Ingest, SourceFeed
from bot.logs import log_context
from bot.metrics import HEARTBEAT_BOUND, Metrics
from bot.sources.base import Source
from bot.sources.polling import START_SPREAD, PolledSource, Poller
from bot.sources.supervisor import supervise
from bot.storage import Storage
from bot.storage.coordination import Coordination, LocalCoordination

log = logging.getLogger(__name__)

SYNC_INTERVAL = 60.0


class SourceManager:
    """Starts and stops source tasks to match the enabled sources in storage."""

    def __init__(
        self,
        storage: Storage,
        ingest: Ingest,
        build: Callable[[SourceSpec], Source],
        *,
        sync_interval: float = SYNC_INTERVAL,
        notify: Notify | None = None,
        per_host: int = 2,
        start_spread: float = START_SPREAD,
        coordination: Coordination | None = None,
        telegram: bool = True,
        metrics: Metrics | None = None,
    ) -> None:
        """`coordination`: the workers sharing the database (each source read by one of
        them, each taking its share); `telegram`: this worker has a Telegram session;
        `metrics`: where each source's health is shown and the manager reports that it
        syncs (by default the ingest's)."""
        self._storage = storage
        self._ingest = ingest
        self._build = build
        self._sync_interval = sync_interval
        self._notify = notify
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._poller = Poller(
            per_host=per_host, on_stopped=self._stopped, start_spread=start_spread
        )
        self._poller_task: asyncio.Task[None] | None = None
        self._unbuildable: dict[str, str] = {}  # spec → why it cannot run (said once)
        self._lock = asyncio.Lock()
        self._coordination = coordination or LocalCoordination()
        self._telegram = telegram
        self._ids: dict[str, int] = {}  # running spec → its source id (its claim)
        self._metrics = metrics or ingest.metrics

    @property
    def running(self) -> list[str]:
        streaming = [spec for spec, task in self._tasks.items() if not task.done()]
        return sorted([*streaming, *self._poller.specs])

    def _is_running(self, spec: str) -> bool:
        task = self._tasks.get(spec)
        return spec in self._poller or (task is not None and not task.done())

    async def sync(self) -> None:
        """Start enabled sources that are not running (those no other worker reads, up to
        this worker's share); stop the ones no longer enabled."""
        async with self._lock:
            infos = await self._storage.list_sources()
            # Every source, also those other workers read: any worker's metrics show them.
            self._metrics.sources_listed(infos)
            wanted = {info.spec: info for info in infos}
            for spec in self.running:
                if spec not in wanted:
                    await self._stop(spec)
                    log.info("stopped watching %s", spec)
            for telegram in (True, False):
                kind = {s: i for s, i in wanted.items() if _is_telegram(s) == telegram}
                await self._take_share(kind, telegram=telegram)

    async def _take_share(self, wanted: dict[str, SourceInfo], *, telegram: bool) -> None:
        coordination = self._coordination
        # telegram: sources go to workers with a session while any is alive (without one,
        # a worker reads them through t.me/s, as a single service without one does).
        if telegram and not self._telegram and await coordination.workers(telegram=True):
            # ... and those read that way while no such worker was alive are handed back.
            for spec in wanted:
                if self._is_running(spec):
                    await self._stop(spec)
                    log.info("left %s to a worker with a Telegram session", spec)
            return
        share = await coordination.share(len(wanted), telegram=telegram and self._telegram)
        mine = sum(1 for spec in wanted if self._is_running(spec))
        for spec, info in wanted.items():
            if mine >= share:
                return
            if self._is_running(spec) or not await coordination.claim(info.id):
                continue
            await self._start(SourceSpec.parse(spec), info.id)
            if not self._is_running(spec):  # cannot be built here: another worker may
                await coordination.release(info.id)
                continue
            self._ids[spec] = info.id
            mine += 1

    async def _start(self, spec: SourceSpec, source_id: int) -> None:
        try:
            source = self._build(spec)
        except ValueError as exc:
            if self._unbuildable.get(spec.text) != str(exc):  # say it once, not every minute
                self._unbuildable[spec.text] = str(exc)
                log.error("cannot watch %s: %s", spec.text, exc)
                # Nothing will read it until the settings change: it is stopped.
                await self._storage.record_source_error(source_id, str(exc), stopped=True)
            return
        self._unbuildable.pop(spec.text, None)
        # The Poller and the telegram source report completed reads themselves; for other
        # streaming sources (a followed file) a stored post is the sign that reading works.
        reports_reads = isinstance(source, PolledSource) or bool(
            getattr(source, "reports_reads", False)
        )
        feed = SourceFeed(
            self._ingest,
            self._storage,
            source_id,
            posts_prove_health=not reports_reads,
            spec=spec.text,
        )
        if isinstance(source, PolledSource):
            self._poller.add(source, feed)
            if self._poller_task is None or self._poller_task.done():
                self._poller_task = asyncio.create_task(self._poller.run(), name="poller")
            log.info("polling %s every %.0f s", spec.text, source.interval)
            return
        with log_context(source=spec.text):  # its task's records name it (LOG_FORMAT=json)
            self._tasks[spec.text] = asyncio.create_task(
                supervise(
                    source,
                    feed,
                    lambda error, stopped: feed.failed(error, stopped=stopped),
                    on_stopped=self._stopped,
                ),
                name=f"source {spec.text}",
            )
            log.info("watching %s", spec.text)

    async def _stopped(self, spec: str, problem: str) -> None:
        if self._notify is not None:
            await self._notify("alarm-source-stopped", source=spec, problem=problem)

    async def _stop(self, spec: str) -> None:
        if spec in self._poller:
            await self._poller.remove(spec)
        else:
            await _cancel(self._tasks.pop(spec))
        source_id = self._ids.pop(spec, None)
        if source_id is not None:
            await self._coordination.release(source_id)

    async def run(self) -> None:
        """Sync every `sync_interval` seconds until cancelled (the caller syncs at start),
        reporting each pass to the health check (a pass that hangs is a stuck manager)."""
        within = max(HEARTBEAT_BOUND, 5 * self._sync_interval)
        while True:
            self._metrics.beat("sources", within=within)
            await asyncio.sleep(self._sync_interval)
            try:
                await self.sync()
            except Exception:  # a database hiccup must not stop the sources already running
                log.exception("could not sync the list of sources")

    async def stop_all(self) -> None:
        for spec in self.running:
            await self._stop(spec)
        if self._poller_task is not None:
            await _cancel(self._poller_task)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def _is_telegram(spec: str) -> bool:
    return spec.startswith("telegram:")
