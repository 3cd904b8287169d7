"""What an operator's monitoring reads: Prometheus metrics, a health check, and the HTTP
endpoint serving both (`METRICS_PORT`).

Every service owns one `Metrics` (its own `CollectorRegistry`, never the global one) and hands
it to the parts it instruments, so several services (or tests) in one process stay apart.
Counting is cheap: a counter's `inc` per post stored or per message sent, nothing per match.

What the outbox and the sources look like from the database (messages waiting, the oldest
one's age, each source's last successful read) is read at scrape time, at most once every
`STORAGE_REFRESH` seconds however often Prometheus (or several of them) scrapes.

`/healthz` answers 200 "ok" while the service's long-running tasks are alive and the parts
that loop (the outbox worker, the sources manager) have reported lately (`beat`), and 503 with
the reason otherwise: starting, stopping, a task that ended, a part that stopped reporting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

if TYPE_CHECKING:
    from bot.domain import SourceInfo
    from bot.storage import Storage

log = logging.getLogger(__name__)

STORAGE_REFRESH = 5.0  # seconds the outbox figures read from the database are reused
REFRESH_WAIT = 3.0  # seconds a scrape waits for that read before answering with older figures
# A part that loops (the outbox worker passes every few seconds; the sources manager once a
# minute) and has not reported for this long is taken as stuck: generous, as a loaded
# machine or a long database transaction may hold a pass up for a while.
HEARTBEAT_BOUND = 300.0
# Seconds from the outbox handing a message to the sender until Telegram accepted it: the
# pacer's wait (Telegram's limits, replies first) plus the Bot API call.
SEND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
OUTBOX_KINDS = ("alert", "digest")
SET_ASIDE_REASONS = ("blocked", "rejected", "empty")
REASON_SHOWN = 200  # characters of a /healthz reason


@dataclass(slots=True)
class SourceState:
    """What this process knows of one source: its post counter and, as unix times, the date
    of its newest post and its last successful read (None: not known)."""

    posts: Counter
    newest_post: float | None = None
    last_ok: float | None = None

    def stored(self, date: datetime) -> None:
        """A new post from the source was stored."""
        self.posts.inc()
        moment = date.timestamp()
        if self.newest_post is None or moment > self.newest_post:
            self.newest_post = moment

    def succeeded(self) -> None:
        """A read of the source completed."""
        self.last_ok = time.time()


class _SourceCollector:
    """Per-source gauges worked out at scrape time (the lag grows while nothing comes)."""

    def __init__(self, sources: dict[str, SourceState]) -> None:
        self._sources = sources

    def describe(self) -> Iterable[Metric]:
        return self._families({})

    def collect(self) -> Iterable[Metric]:
        return self._families(self._sources)

    def _families(self, sources: dict[str, SourceState]) -> list[Metric]:
        lag = GaugeMetricFamily(
            "dozor_source_lag_seconds",
            "Seconds since the date of the newest post read from the source (the time it"
            " was stored, for posts this process did not read)",
            labels=["source"],
        )
        last_ok = GaugeMetricFamily(
            "dozor_source_last_success_timestamp_seconds",
            "Unix time of the source's last successful read (0: none yet)",
            labels=["source"],
        )
        now = time.time()
        for spec, state in sorted(sources.items()):
            if state.newest_post is not None:
                lag.add_metric([spec], max(0.0, now - state.newest_post))
            last_ok.add_metric([spec], state.last_ok or 0.0)
        return [lag, last_ok]


@dataclass(slots=True)
class _Beat:
    at: float  # the monotonic clock's time of the last report
    within: float  # seconds after which silence means the part is stuck
    gauge: Gauge = field(repr=False)


class Metrics:
    """The service's metrics, in a registry of its own (`registry`).

    Counters (exported with `_total`): posts stored per source, matches, alerts queued,
    outbox rows sent (by kind) / set aside (by reason) / retried, messages the outbox sent,
    Telegram's 429s. Gauges: outbox depth, the oldest waiting message's age, whether
    something is due now, per-source lag and last success, leadership, health, heartbeats.
    A histogram: the send latency (see SEND_BUCKETS).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock`: the monotonic clock heartbeats are timed by (tests pass their own)."""
        self.registry = registry or CollectorRegistry()
        self.clock = clock
        r = self.registry
        self.posts_ingested = Counter(
            "dozor_posts_ingested",
            "New posts stored, per source (an edit or a read of a stored post is not counted)",
            ["source"],
            registry=r,
        )
        self.matches = Counter(
            "dozor_matches",
            "Matches of a post by a subscription found when posts were stored",
            registry=r,
        )
        self.alerts_queued = Counter(
            "dozor_alerts_queued", "Alerts queued for sending (one per chat and post)", registry=r
        )
        self.outbox_sent = Counter(
            "dozor_outbox_sent",
            "Outbox rows Telegram accepted: alerts (several may share a message) and digest"
            " messages",
            ["kind"],
            registry=r,
        )
        self.outbox_messages = Counter(
            "dozor_outbox_messages_sent",
            "Messages the outbox sent (Bot API calls accepted)",
            registry=r,
        )
        self.outbox_set_aside = Counter(
            "dozor_outbox_set_aside",
            "Outbox rows set aside, never to be sent: the chat blocked the bot, Telegram"
            " rejected the message, or nothing was left to send",
            ["reason"],
            registry=r,
        )
        self.outbox_retried = Counter(
            "dozor_outbox_retried",
            "Outbox rows postponed after a transient failure (network, 5xx, 429)",
            registry=r,
        )
        self.telegram_429 = Counter(
            "dozor_telegram_429",
            "Bot API calls Telegram answered with 429 Too Many Requests",
            registry=r,
        )
        self.send_seconds = Histogram(
            "dozor_send_seconds",
            "Seconds from the outbox handing a message to the sender until Telegram accepted"
            " it (the pacer's wait plus the Bot API call)",
            buckets=SEND_BUCKETS,
            registry=r,
        )
        self.outbox_pending = Gauge(
            "dozor_outbox_pending",
            "Messages waiting to be sent (alerts not yet filed included)",
            registry=r,
        )
        self.outbox_oldest_age = Gauge(
            "dozor_outbox_oldest_pending_age_seconds",
            "Age of the oldest message waiting for an active chat (held alerts of muted or"
            " quiet chats included); 0 when none waits",
            registry=r,
        )
        self.outbox_due = Gauge(
            "dozor_outbox_due",
            "1 while a message is due now (not held or postponed), else 0",
            registry=r,
        )
        self.leader = Gauge(
            "dozor_leader", "1 while this process leads (answers commands, sends)", registry=r
        )
        self.healthy = Gauge("dozor_healthy", "1 while /healthz answers 200, else 0", registry=r)
        self.heartbeat = Gauge(
            "dozor_heartbeat_timestamp_seconds",
            "Unix time a looping part (outbox, sources) last reported",
            ["part"],
            registry=r,
        )
        for kind in OUTBOX_KINDS:
            self.outbox_sent.labels(kind)
        for reason in SET_ASIDE_REASONS:
            self.outbox_set_aside.labels(reason)
        self._sources: dict[str, SourceState] = {}
        r.register(_SourceCollector(self._sources))
        self._beats: dict[str, _Beat] = {}
        self._outbox_read_at: float | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._refresh_failed = False

    # --- sources ---------------------------------------------------------------------

    def source(self, spec: str) -> SourceState:
        """The state of one source (labelled by its spec, which operators configure)."""
        state = self._sources.get(spec)
        if state is None:
            state = self._sources[spec] = SourceState(self.posts_ingested.labels(spec))
        return state

    def sources_listed(self, infos: Iterable[SourceInfo]) -> None:
        """The sources as the database lists them: those no longer listed are dropped, the
        others take the newer of what the database and this process know (another worker
        may read them)."""
        listed = {}
        for info in infos:
            state = self.source(info.spec)
            if info.last_ok_at is not None:
                state.last_ok = max(state.last_ok or 0.0, info.last_ok_at.timestamp())
            if info.last_post_at is not None:
                state.newest_post = max(state.newest_post or 0.0, info.last_post_at.timestamp())
            listed[info.spec] = state
        self._sources.clear()
        self._sources.update(listed)

    # --- heartbeats ------------------------------------------------------------------

    def beat(self, part: str, *, within: float = HEARTBEAT_BOUND) -> None:
        """`part` is making progress; silent for more than `within` seconds, it is stuck."""
        beat = self._beats.get(part)
        if beat is None:
            beat = self._beats[part] = _Beat(0.0, within, self.heartbeat.labels(part))
        beat.at = self.clock()
        beat.within = within
        beat.gauge.set(time.time())

    def stale(self) -> list[tuple[str, float]]:
        """The parts silent for longer than their bound, with seconds since their report."""
        now = self.clock()
        return [
            (part, now - beat.at)
            for part, beat in sorted(self._beats.items())
            if now - beat.at > beat.within
        ]

    # --- the outbox, from the database -----------------------------------------------

    async def refresh_outbox(self, storage: Storage, *, wait: float = REFRESH_WAIT) -> None:
        """Read the outbox figures unless read in the last STORAGE_REFRESH seconds; a read
        taking longer than `wait` goes on in the background (the figures stay as they were
        for this scrape). One read at a time, however many scrapes come."""
        task = self._refreshing
        if task is None or task.done():
            read_at = self._outbox_read_at
            if read_at is not None and self.clock() - read_at < STORAGE_REFRESH:
                return
            task = self._refreshing = asyncio.create_task(
                self._read_outbox(storage), name="metrics refresh"
            )
        await asyncio.wait([task], timeout=wait)

    async def _read_outbox(self, storage: Storage) -> None:
        self._outbox_read_at = self.clock()  # a failed read too: tried again after a while
        try:
            counts = await storage.outbox_counts()
            oldest = await storage.oldest_pending_at()
            due = await storage.next_attempt_at()
        except Exception as exc:  # a database hiccup: the figures stay, the scrape answers
            if not self._refresh_failed:
                log.warning("metrics: cannot read the outbox figures: %s", exc)
            self._refresh_failed = True
            return
        self._refresh_failed = False
        now = datetime.now(UTC)
        self.outbox_pending.set(counts.get("pending", 0))
        age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
        self.outbox_oldest_age.set(age)
        self.outbox_due.set(1 if due is not None and due <= now else 0)

    async def close(self) -> None:
        """Stop a read in progress (before the database closes)."""
        task = self._refreshing
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Health:
    """Whether the service is healthy: its long-running tasks alive and its looping parts
    reporting (see `Metrics.beat`). `problem()` is None then, else a short reason."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._tasks: list[asyncio.Task[Any]] = []
        self._started = False
        self._stopping = False
        self._troubles: dict[str, str] = {}  # part -> what keeps it from working

    def watch(self, tasks: Iterable[asyncio.Task[Any]]) -> None:
        """The service runs these tasks until it stops: each must stay alive."""
        self._tasks = list(tasks)
        self._started = True

    def stopping(self) -> None:
        """The service is shutting down: unhealthy from now on."""
        self._stopping = True

    def trouble(self, part: str, problem: str | None) -> None:
        """A part is alive but cannot work (`problem`), or works again (None): the Bot API
        cannot be reached, say, while polling keeps trying."""
        if problem is None:
            self._troubles.pop(part, None)
        else:
            self._troubles[part] = problem

    def problem(self) -> str | None:
        if self._stopping:
            return "stopping"
        if not self._started:
            return "starting"
        for task in self._tasks:
            if task.done():
                return _ended(task)
        for part, problem in self._troubles.items():
            return f"{part}: {problem}"
        for part, silent in self._metrics.stale():
            return f"{part} has not reported for {silent:.0f} s"
        return None


def _ended(task: asyncio.Task[Any]) -> str:
    """Which task ended, and how (the exception's type only: no message over HTTP)."""
    name = task.get_name()
    if task.cancelled():
        return f"{name} was cancelled"
    exc = task.exception()
    if exc is None:
        return f"{name} stopped"
    return f"{name} stopped ({type(exc).__name__})"


class MetricsEndpoint:
    """`/metrics` (Prometheus text format) and `/healthz` over HTTP, on the service's loop."""

    def __init__(self, metrics: Metrics, health: Health, storage: Storage | None = None) -> None:
        self._metrics = metrics
        self._health = health
        self._storage = storage
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on `host`:`port` (0: any free port; see `address`). Raises OSError when
        the port cannot be had."""
        app = web.Application()
        app.router.add_get("/metrics", self._serve_metrics)
        app.router.add_get("/healthz", self._serve_health)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound = runner.addresses[0]
        self.address = (str(bound[0]), int(bound[1]))

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self._metrics.close()

    async def _serve_health(self, request: web.Request) -> web.Response:
        problem = self._health.problem()
        if problem is None:
            return web.Response(text="ok\n")
        return web.Response(status=503, text=problem[:REASON_SHOWN] + "\n")

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        if self._storage is not None:
            await self._metrics.refresh_outbox(self._storage)
        self._metrics.healthy.set(0 if self._health.problem() else 1)
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})
