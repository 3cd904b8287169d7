"""Wiring and lifecycle of `dozor run`: bot, sources, delivery, the digest and retention jobs."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import html
import json
import logging
import os
import signal
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import LinkPreviewOptions, User
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING

from bot.config import Settings, SettingsError
from bot.delivery.chats import chat_texts
from bot.delivery.outbox import OutboxWorker
from bot.delivery.responses import KeepResponseTypes
from bot.delivery.sender import Pacer, TelegramSender
from bot.digest import queue_digests
from bot.i18n import Argument, Catalog
from bot.ingest import Ingest, Matcher
from bot.metrics import Health, Metrics, MetricsEndpoint
from bot.redact import Redactor
from bot.sources.links import parse_source
from bot.sources.manager import SYNC_INTERVAL, SourceManager
from bot.sources.registry import SourceOptions, build_source
from bot.sources.telegram import TelethonConnector
from bot.sources.x import XApi, XOptions
from bot.storage import Storage
from bot.storage.coordination import LEADER, OUTBOX, SUBSCRIPTIONS, Coordination
from bot.storage.opening import open_coordination, open_storage
from bot.storage.records import Pruned
from handlers import build_router
from handlers.admins import AdminCheck
from handlers.errors import on_error
from handlers.menu import set_command_menus
from handlers.search import Searches
from handlers.throttle import InputThrottle

log = logging.getLogger(__name__)


def loads_clean(text: str) -> Any:
    """JSON from the Bot API with lone surrogates replaced.

    JSON may escape half of a surrogate pair (`"\\ud800"`); Python decodes it into a string
    that cannot be encoded again, so echoing such a message in a reply would fail. Cleaning
    every update here, at the edge, keeps it out of every handler.
    """
    return _without_surrogates(json.loads(text))


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {key: _without_surrogates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_surrogates(item) for item in value]
    return value


def make_bot(settings: Settings) -> Bot:
    """An aiogram Bot speaking to the configured Bot API server, HTML by default."""
    session = AiohttpSession(
        api=TelegramAPIServer.from_base(settings.telegram_api_base), json_loads=loads_clean
    )
    session.middleware(KeepResponseTypes())
    return Bot(
        settings.require_token(),
        session=session,
        default=DefaultBotProperties(
            parse_mode="HTML", link_preview=LinkPreviewOptions(is_disabled=True)
        ),
    )


def source_options(settings: Settings, connector: TelethonConnector | None) -> SourceOptions:
    """How sources are built from the settings (the X client is shared by every account)."""
    token = settings.x_bearer_token
    return SourceOptions(
        tgweb_base=settings.tgweb_base,
        tgweb_interval=settings.tgweb_poll_minutes * 60,
        telegram=connector,
        telegram_catch_up=settings.tg_catch_up_minutes * 60,
        x_api=XApi(token.get_secret_value(), base_url=settings.x_api_base) if token else None,
        x_interval=settings.x_poll_minutes * 60,
        x_options=XOptions(
            include_replies=settings.x_include_replies,
            include_reposts=settings.x_include_reposts,
        ),
        rss_interval=settings.rss_poll_minutes * 60,
    )


def build_dispatcher(
    storage: Storage,
    matcher: Matcher,
    settings: Settings,
    sources: SourceManager | None = None,
    searches: Searches | None = None,
    catalog: Catalog | None = None,
    throttle: InputThrottle | None = None,
) -> Dispatcher:
    """The dispatcher with every router; handlers receive these objects by parameter name
    (`throttle`: the per-chat input bounds, the defaults when None)."""
    catalog = catalog or Catalog()
    dispatcher = Dispatcher(
        db=storage,
        matcher=matcher,
        settings=settings,
        sources=sources,
        searches=searches or Searches(),
        catalog=catalog,
        admins=AdminCheck(),
    )
    dispatcher.include_router(build_router(catalog, throttle))
    dispatcher.errors.register(on_error)
    return dispatcher


async def add_configured_sources(settings: Settings, storage: Storage) -> None:
    """`SOURCES` is authoritative at start: each is watched (again, if it had been removed)."""
    for text in settings.sources:
        try:
            spec = parse_source(text)
        except ValueError as exc:
            log.error("SOURCES: %s", exc)
            continue
        await storage.add_source(spec.text, spec.kind, origin="config")


BOT_RETRY_FIRST = 1.0  # seconds before trying the Bot API again at start, doubling...
BOT_RETRY_MAX = 60.0  # ...up to a minute


def settle_heap() -> None:
    """Take what exists once the service has started (the libraries, the subscription index)
    out of the garbage collector's full passes: each walks every tracked object, and with
    an index of 10,000 queries that held the event loop for 100-300 ms at a time."""
    gc.collect()
    gc.freeze()


SHUTDOWN_GRACE = 10.0  # seconds a digest job or a command being handled may take at shutdown
LEADER_RETRY = 2.0  # seconds between a worker's tries to become the leader
SESSION_CHECK = 1.0  # seconds between the leader's checks that it still holds the role
SHARED_SYNC = 10.0  # seconds between a worker's looks for sources nobody reads


class FatalError(Exception):
    """A problem waiting will not fix (the Bot API refuses the token): the service exits."""


async def connect_bot(
    bot: Bot, base: str, unreachable: Callable[[str], None] | None = None
) -> User:
    """`getMe` until the Bot API answers, backing off while it cannot be reached.

    A refused token is fatal; anything else (no network, 5xx, a proxy's error page) is waited
    out, loudly, because the service is useless to its users until commands can be read.
    `unreachable` is told the kind of each failure (for /healthz).
    """
    delay = BOT_RETRY_FIRST
    while True:
        try:
            return await bot.me()
        except (TelegramUnauthorizedError, TelegramNotFound) as exc:
            raise FatalError(
                f"the Bot API at {base} refused BOT_TOKEN ({exc.message}); check the token "
                "with @BotFather and TELEGRAM_API_BASE"
            ) from None
        except TelegramRetryAfter as exc:
            wait = float(exc.retry_after)
            log.warning("the Bot API asked to wait %.0f s before getMe", wait)
        except (TelegramAPIError, ClientDecodeError, OSError, TimeoutError) as exc:
            if unreachable is not None:
                unreachable(type(exc).__name__)
            wait = delay
            delay = min(delay * 2, BOT_RETRY_MAX)
            log.warning(
                "cannot reach the Bot API at %s (%s: %s); commands are not answered until it"
                " can be; trying again in %.0f s",
                base,
                type(exc).__name__,
                exc,
                wait,
            )
        await asyncio.sleep(wait)


async def answer_commands(
    bot: Bot,
    dispatcher: Dispatcher,
    settings: Settings,
    catalog: Catalog,
    health: Health | None = None,
) -> None:
    """Connect to the Bot API (retrying; /healthz says so meanwhile), then poll for updates
    until stopped."""

    def unreachable(kind: str) -> None:
        if health is not None:
            health.trouble("polling", f"cannot reach the Bot API ({kind})")

    me = await connect_bot(bot, settings.telegram_api_base, unreachable)
    if health is not None:
        health.trouble("polling", None)
    log.info("connected to the Bot API as @%s; answering commands", me.username)
    await set_command_menus(bot, catalog)
    await dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False)


async def supervise_tasks(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> int:
    """Wait for a stop signal or for any long-running task to end; 0, or 1 if a task ended.

    A service with its polling, sources or sender dead must not linger half-alive: it exits
    non-zero, so the operator (or systemd, or Docker) sees it and restarts it.
    """
    stopping = asyncio.create_task(stop.wait(), name="stop signal")
    try:
        done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    failed = [task for task in done if task is not stopping]
    for task in failed:
        exc = None if task.cancelled() else task.exception()
        if isinstance(exc, FatalError):
            log.critical("%s", exc)
        elif exc is not None:
            log.critical("%s stopped: %s; exiting", task.get_name(), exc, exc_info=exc)
        else:
            log.critical("%s stopped unexpectedly; exiting", task.get_name())
    return 1 if failed else 0


PRUNE_EVERY_MINUTES = 10
PRUNE_FIRST_AFTER = timedelta(minutes=1)  # the start's own work (catch-up, the outbox) first
SENT_KEPT = timedelta(hours=1)  # a sent message's row, kept for a look in the database
FAILED_KEPT = timedelta(days=7)  # a message set aside, kept to be looked into


async def prune_expired(
    storage: Storage, days: int, now: datetime, *, stop: Callable[[], bool] | None = None
) -> Pruned | None:
    """One run of RETENTION_DAYS: prune what is older than `days` before `now`.

    A failure (a full disk, a lock held too long) is logged and left to the next run, which
    goes on from where this one stopped; None then."""
    try:
        pruned = await storage.prune(now - timedelta(days=days), stop=stop)
    except (sqlite3.Error, OSError) as exc:
        log.warning(
            "pruning what is older than %d days failed, tried again in %d minutes: %s",
            days,
            PRUNE_EVERY_MINUTES,
            exc,
        )
        return None
    if pruned.posts or pruned.messages:
        log.info(
            "retention of %d days: pruned %d post(s), %d match(es) and %d sent message(s)",
            days,
            pruned.posts,
            pruned.matches,
            pruned.messages,
        )
    return pruned


def add_periodic(
    scheduler: AsyncIOScheduler,
    work: Callable[[], Awaitable[None]],
    running: set[asyncio.Task[Any]],
    *,
    job_id: str,
    every: timedelta,
    first: timedelta = timedelta(0),
) -> None:
    """Run `work` every `every` (the first time `first` from now): one run at a time, a late
    run not made up twice, and a run in progress tracked in `running`, so that shutdown
    lets it finish."""

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        running.add(task)
        try:
            await work()
        finally:
            running.discard(task)

    scheduler.add_job(
        run,
        "interval",
        seconds=every.total_seconds(),
        next_run_time=datetime.now(UTC) + first,
        misfire_grace_time=None,
        coalesce=True,
        max_instances=1,
        id=job_id,
    )


def schedule_pruning(
    scheduler: AsyncIOScheduler,
    storage: Storage,
    days: int,
    running: set[asyncio.Task[Any]],
) -> None:
    """Prune every PRUNE_EVERY_MINUTES when RETENTION_DAYS is set, the first run soon after
    start. A run in progress is tracked in `running` (awaited at shutdown) and ends between
    batches once the scheduler is paused for shutdown."""
    if not days:
        return

    async def prune_job() -> None:
        await prune_expired(
            storage, days, datetime.now(UTC), stop=lambda: scheduler.state != STATE_RUNNING
        )

    add_periodic(
        scheduler,
        prune_job,
        running,
        job_id="prune",
        every=timedelta(minutes=PRUNE_EVERY_MINUTES),
        first=PRUNE_FIRST_AFTER,
    )


def watch_overruns(scheduler: AsyncIOScheduler) -> None:
    """Say so in the log when a periodic job's run is skipped because the previous one is
    still going (or the loop was too busy to start it in time), instead of skipping it
    silently: a digest job that never finishes would otherwise look like no digests."""

    def skipped(event: JobEvent) -> None:
        if event.code == EVENT_JOB_MAX_INSTANCES:
            reason = "the previous run is still going"
            due = getattr(event, "scheduled_run_times", None) or [None]
        else:
            reason = "the event loop could not start it in time"
            due = [getattr(event, "scheduled_run_time", None)]
        log.warning("periodic job %r skipped its run due at %s: %s", event.job_id, due[0], reason)

    scheduler.add_listener(skipped, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)


def schedule_outbox_pruning(
    scheduler: AsyncIOScheduler, storage: Storage, running: set[asyncio.Task[Any]]
) -> None:
    """Every PRUNE_EVERY_MINUTES, delete outbox rows sent more than SENT_KEPT ago (the day's
    counts stay for /stats) and rows set aside more than FAILED_KEPT ago: without this the
    outbox grew by every alert ever sent."""

    async def prune_outbox() -> None:
        now = datetime.now(UTC)
        try:
            pruned = await storage.prune_finished(now - SENT_KEPT, now - FAILED_KEPT)
        except (sqlite3.Error, OSError) as exc:
            log.warning("pruning sent messages failed, tried again later: %s", exc)
            return
        if pruned:
            log.info("pruned %d sent or set-aside message(s) from the outbox", pruned)

    add_periodic(
        scheduler,
        prune_outbox,
        running,
        job_id="prune-outbox",
        every=timedelta(minutes=PRUNE_EVERY_MINUTES),
        first=PRUNE_FIRST_AFTER,
    )


async def serve_metrics(
    settings: Settings, metrics: Metrics, health: Health, storage: Storage
) -> MetricsEndpoint | None:
    """The /metrics and /healthz endpoint when METRICS_PORT is set (None otherwise).

    A port that cannot be had stops the start (SettingsError): the operator asked for the
    service to be monitored, and a service nobody sees is worse than one that does not run.
    """
    port = settings.metrics_port
    if port is None:
        return None
    host = settings.metrics_host
    endpoint = MetricsEndpoint(metrics, health, storage)
    try:
        await endpoint.start(host, port)
    except OSError as exc:
        # asyncio words a bind error at length; the system's words are enough.
        why = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or exc
        raise SettingsError(
            f"METRICS_PORT: cannot serve metrics on {host}:{port} ({why}); free the port, or"
            " set another METRICS_PORT or METRICS_HOST"
        ) from None
    shown = f"[{host}]" if ":" in host else host
    log.info("metrics on http://%s:%d/metrics", shown, port)
    return endpoint


async def run_service(settings: Settings, redact: Redactor | None = None) -> int:
    """Run until SIGTERM or SIGINT, then shut down in order without losing queued alerts.

    Returns the exit status: 0 after a requested stop, 1 when a long-running task died.
    Raises StorageError when the database cannot be used (or another service holds it),
    SettingsError when METRICS_PORT is set and cannot be listened on.
    Whatever fails, everything opened is closed again (an open database would keep its
    thread, and the process, alive).
    """
    async with contextlib.AsyncExitStack() as opened:
        shared = settings.database_value() is not None  # PostgreSQL: workers share it
        storage = await open_storage(
            settings.dozor_db, settings.database_value(), exclusive=not shared, redact=redact
        )
        opened.push_async_callback(storage.close)
        metrics = Metrics()
        health = Health(metrics)
        # Stopped before the database closes (a scrape in progress reads it).
        endpoint = await serve_metrics(settings, metrics, health, storage)
        if endpoint is not None:
            opened.push_async_callback(endpoint.stop)
        bot = make_bot(settings)
        opened.push_async_callback(bot.session.close)
        matcher = Matcher(storage)
        opened.callback(matcher.close)
        credentials = settings.telegram_credentials
        connector = (
            TelethonConnector(*credentials, str(settings.tg_session)) if credentials else None
        )
        if connector is not None:
            opened.push_async_callback(connector.close)
        searches = Searches()
        opened.callback(searches.close)
        coordination = await open_coordination(
            settings.database_value(), telegram=connector is not None
        )
        opened.push_async_callback(coordination.close)
        storage.claim_as(coordination.worker)
        status = await _serve(
            settings, storage, bot, matcher, connector, searches, coordination, metrics, health
        )
    log.info("stopped")
    return status


async def _serve(
    settings: Settings,
    storage: Storage,
    bot: Bot,
    matcher: Matcher,
    connector: TelethonConnector | None,
    searches: Searches,
    coordination: Coordination,
    metrics: Metrics | None = None,
    health: Health | None = None,
) -> int:
    """Start every part, supervise them until a stop or a failure, then stop them in order.

    Every worker reads its share of the sources and keeps its index in step with the
    others'; the leader (on SQLite, the one process; on PostgreSQL, whichever worker holds
    the role) also answers commands, sends, and runs the digest and pruning jobs.

    `health` watches the long-running tasks (a follower's outbox and polling wait for the
    leader's role: alive, so healthy) and turns unhealthy when shutdown begins."""
    metrics = metrics or Metrics()
    health = health or Health(metrics)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    outbox_ready = asyncio.Event()
    outbox_ready.set()  # whatever was left in the outbox goes out first
    await matcher.refresh()
    settle_heap()
    retention = timedelta(days=settings.retention_days) if settings.retention_days else None
    ingest = Ingest(storage, matcher, outbox_ready, retention=retention, metrics=metrics)
    options = source_options(settings, connector)
    sender = TelegramSender(bot, Pacer(rate=settings.send_rate), metrics=metrics)

    catalog = Catalog()

    async def notify_admins(key: str, /, **args: Argument) -> None:
        """Problems an admin must fix (a revoked session, say) go to every admin's chat, in
        that chat's language."""
        safe = {
            k: html.escape(v, quote=False) if isinstance(v, str) else v for k, v in args.items()
        }
        for admin in settings.admin_ids:
            t = chat_texts(catalog, await storage.get_subscriber(admin))
            result = await sender.send(admin, t(key, **safe))
            if result.status != "sent":
                log.warning("could not tell admin %d: %s", admin, result.reason)

    async def follow_move(old: int, new: int) -> None:
        """A group became a supergroup (its chat moved to the new id): match for the new id."""
        await matcher.refresh()

    worker = OutboxWorker(
        storage,
        sender,
        settings.tz,
        outbox_ready,
        alarm=notify_admins,
        catalog=catalog,
        on_moved=follow_move,
        metrics=metrics,
    )
    manager = SourceManager(
        storage,
        ingest,
        lambda spec: build_source(spec, options),
        notify=notify_admins,
        per_host=settings.poll_per_host,
        coordination=coordination,
        telegram=connector is not None,
        # Shared: a dead worker's sources are taken over at the others' next look.
        sync_interval=SHARED_SYNC if settings.database_value() else SYNC_INTERVAL,
        metrics=metrics,
    )
    dispatcher = build_dispatcher(storage, matcher, settings, manager, searches, catalog)

    scheduler = AsyncIOScheduler(timezone=UTC)
    watch_overruns(scheduler)
    jobs: set[asyncio.Task[Any]] = set()  # scheduler jobs running now (finished at shutdown)

    # Due times stored under the previous run's DIGEST_TIME and TIMEZONE are worked out again.
    await storage.reschedule_all_digests()

    async def digest_job() -> None:
        now = await storage.write_barrier()
        count = await queue_digests(
            storage, now, settings.digest_time, settings.tz, catalog=catalog, index=matcher
        )
        if count:
            outbox_ready.set()

    add_periodic(scheduler, digest_job, jobs, job_id="digests", every=timedelta(minutes=1))
    schedule_pruning(scheduler, storage, settings.retention_days, jobs)
    schedule_outbox_pruning(scheduler, storage, jobs)

    await add_configured_sources(settings, storage)
    tasks: list[asyncio.Task[None]] = []
    leading = asyncio.Event()

    async def lead() -> None:
        """Become the leader when no other worker is, start the leader's parts, and hold
        on: a worker that lost its session (and so the role) exits to be restarted."""
        # Polled: a role is freed by the server when its holder's session ends.
        while not await coordination.try_role(LEADER):  # noqa: ASYNC110
            await asyncio.sleep(LEADER_RETRY)
        await asyncio.sleep(coordination.handover)
        scheduler.start()
        leading.set()
        metrics.leader.set(1)
        log.info("leading: sending, answering commands and running the scheduled jobs")
        while await coordination.alive():  # noqa: ASYNC110 (the connection, not an event)
            await asyncio.sleep(SESSION_CHECK)
        raise RuntimeError("lost the database session that held the leader role")

    async def when_leading(part: Callable[[], Awaitable[None]]) -> None:
        await leading.wait()
        await part()

    async def follow() -> None:
        """News from the other workers: a chat's subscriptions changed, alerts queued."""
        async with coordination.listening([SUBSCRIPTIONS, OUTBOX]) as notes:
            if settings.database_value():
                # Changes made by others between loading the index and listening.
                await matcher.refresh()
            async for channel, payload in notes:
                if channel == OUTBOX:
                    outbox_ready.set()
                elif payload.lstrip("-").isdigit():
                    await matcher.follow_chat(int(payload))

    status = 1
    try:
        await manager.sync()
        tasks = [
            asyncio.create_task(manager.run(), name="sources"),
            asyncio.create_task(follow(), name="following"),
            asyncio.create_task(lead(), name="leading"),
            asyncio.create_task(when_leading(worker.run), name="outbox"),
            asyncio.create_task(
                when_leading(lambda: answer_commands(bot, dispatcher, settings, catalog, health)),
                name="polling",
            ),
        ]
        health.watch(tasks)
        log.info(
            "Dozor is running: %d source(s), %d subscription(s)",
            len(manager.running),
            len(matcher),
        )
        status = await supervise_tasks(stop, tasks)
    finally:
        health.stopping()
        metrics.leader.set(0)
        log.info("shutting down")
        # APScheduler's shutdown cancels a job in progress: let a digest being queued (one
        # transaction per chat) finish first, with no new run starting meanwhile.
        if scheduler.running:
            scheduler.pause()
            if jobs:
                await asyncio.wait(list(jobs), timeout=SHUTDOWN_GRACE)
            scheduler.shutdown(wait=False)
        with contextlib.suppress(RuntimeError):  # polling had not started
            await dispatcher.stop_polling()
        # Commands already being handled get their replies before the database closes.
        # (aiogram keeps no public handle on them; its task set is read defensively.)
        handling = list(getattr(dispatcher, "_handle_update_tasks", ()))
        if handling:
            await asyncio.wait(handling, timeout=SHUTDOWN_GRACE)
        for task in tasks:
            if task.get_name() != "outbox" or not leading.is_set():
                task.cancel()
        await manager.stop_all()
        worker.stop()  # sends in flight get a bounded grace; the rest stays in the outbox
        await asyncio.gather(*tasks, return_exceptions=True)
    return status
