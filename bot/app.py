"""Wiring and lifecycle of `dozor run`: bot, sources, delivery and the digest job."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import signal
from datetime import UTC, datetime

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BotCommand, LinkPreviewOptions
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.config import Settings
from bot.delivery.outbox import OutboxWorker
from bot.delivery.sender import Pacer, TelegramSender
from bot.digest import queue_digests
from bot.ingest import Ingest, Matcher
from bot.sources.links import parse_source
from bot.sources.manager import SourceManager
from bot.sources.registry import SourceOptions, build_source
from bot.sources.telegram import TelethonConnector
from bot.sources.x import XApi, XOptions
from bot.storage import Storage
from handlers import build_router

log = logging.getLogger(__name__)

COMMANDS = [
    BotCommand(command="subscribe", description="Alert me when a post matches a query"),
    BotCommand(command="list", description="My saved queries"),
    BotCommand(command="unsubscribe", description="Stop a query (text or number)"),
    BotCommand(command="search", description="Newest stored posts matching a query"),
    BotCommand(command="help", description="What Dozor does and the query syntax"),
]


def make_bot(settings: Settings) -> Bot:
    """An aiogram Bot speaking to the configured Bot API server, HTML by default."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
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
    storage: Storage, matcher: Matcher, settings: Settings, sources: SourceManager | None = None
) -> Dispatcher:
    """The dispatcher with every router; handlers receive these objects by parameter name."""
    dispatcher = Dispatcher(db=storage, matcher=matcher, settings=settings, sources=sources)
    dispatcher.include_router(build_router())
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


async def run_service(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then shut down in order without losing queued alerts."""
    bot = make_bot(settings)
    storage = await Storage.open(settings.dozor_db)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    outbox_ready = asyncio.Event()
    outbox_ready.set()  # whatever was left in the outbox goes out first
    matcher = Matcher(storage)
    await matcher.refresh()
    ingest = Ingest(storage, matcher, outbox_ready)

    credentials = settings.telegram_credentials
    connector = TelethonConnector(*credentials, str(settings.tg_session)) if credentials else None
    options = source_options(settings, connector)
    sender = TelegramSender(bot, Pacer(rate=settings.send_rate))
    worker = OutboxWorker(storage, sender, settings.tz, outbox_ready)

    async def notify_admins(text: str) -> None:
        """Problems an admin must fix (a revoked session, say) go to every admin's chat."""
        for admin in settings.admin_ids:
            result = await sender.send(admin, html.escape(text, quote=False))
            if result.status != "sent":
                log.warning("could not tell admin %d: %s", admin, result.reason)

    manager = SourceManager(
        storage,
        ingest,
        lambda spec: build_source(spec, options),
        notify=notify_admins,
        per_host=settings.poll_per_host,
    )
    dispatcher = build_dispatcher(storage, matcher, settings, manager)

    scheduler = AsyncIOScheduler(timezone=UTC)

    async def digest_job() -> None:
        count = await queue_digests(storage, datetime.now(UTC), settings.digest_time, settings.tz)
        if count:
            outbox_ready.set()

    scheduler.add_job(
        digest_job,
        "interval",
        minutes=1,
        next_run_time=datetime.now(UTC),
        misfire_grace_time=None,
        coalesce=True,
        max_instances=1,
        id="digests",
    )

    await add_configured_sources(settings, storage)
    await manager.sync()
    manager_task = asyncio.create_task(manager.run(), name="sources")
    worker_task = asyncio.create_task(worker.run(), name="outbox")
    polling_task = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False),
        name="polling",
    )
    scheduler.start()
    with contextlib.suppress(Exception):
        await bot.set_my_commands(COMMANDS)
    log.info(
        "Dozor is running: %d source(s), %d subscription(s)", len(manager.running), len(matcher)
    )
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        scheduler.shutdown(wait=False)
        with contextlib.suppress(RuntimeError):
            await dispatcher.stop_polling()
        manager_task.cancel()
        await manager.stop_all()
        worker.stop()  # sends in flight get a bounded grace; the rest stays in the outbox
        await asyncio.gather(worker_task, manager_task, polling_task, return_exceptions=True)
        if connector is not None:
            await connector.close()
        await bot.session.close()
        await storage.close()
        log.info("stopped")
