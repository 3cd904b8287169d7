"""/stats: the chat's 14-day chart of mentions per query (the digest's chart, on demand), and
for Dozor's administrators the service's figures: who uses it, how much it sends, what is
stuck."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, Message

from bot.config import Settings
from bot.delivery.chats import chat_zone
from bot.delivery.photos import draw_chart_async
from bot.digest import chart_for, chart_shift, chart_window
from bot.domain import SourceInfo, Subscriber
from bot.i18n import Texts
from bot.sources.health import FAILING_AFTER
from bot.storage import Storage
from handlers.access import DozorAdmin


@dataclass(frozen=True, slots=True)
class Stats:
    """The figures /stats shows, as of one moment."""

    subscribers: int
    active: int
    queries: int
    paused: int
    alerts_today: int  # alerts sent since midnight UTC
    pending: int  # messages waiting to be sent to active chats
    oldest_pending: timedelta | None  # how long the oldest of them has waited
    sources: int
    failing_sources: int


def is_failing(info: SourceInfo) -> bool:
    """A source an administrator should look at: stopped, or failing again and again (the
    rule `/sources` flags with ⚠️, silence aside)."""
    return info.stopped_at is not None or info.failures >= FAILING_AFTER


async def gather_stats(db: Storage, now: datetime) -> Stats:
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    counts = await db.service_counts(midnight)
    oldest = await db.oldest_pending_at()
    sources = await db.list_sources()
    return Stats(
        subscribers=counts["subscribers"],
        active=counts["active"],
        queries=counts["queries"],
        paused=counts["paused"],
        alerts_today=counts["alerts"],
        pending=counts["pending"],
        oldest_pending=None if oldest is None else max(timedelta(0), now - oldest),
        sources=len(sources),
        failing_sources=sum(1 for info in sources if is_failing(info)),
    )


def age(t: Texts, length: timedelta) -> str:
    """`under a minute`, `40 minutes`, `5 hours`, `3 days`."""
    seconds = int(length.total_seconds())
    if seconds < 60:
        return t("stats-age-now")
    if seconds < 3600:
        return t("stats-age-minutes", count=seconds // 60)
    if seconds < 172_800:
        return t("stats-age-hours", count=seconds // 3600)
    return t("stats-age-days", count=seconds // 86_400)


def render_stats(t: Texts, stats: Stats) -> str:
    lines = [
        t("stats-title"),
        t("stats-subscribers", count=stats.subscribers, active=stats.active),
        t("stats-queries", count=stats.queries, paused=stats.paused),
        t("stats-alerts", count=stats.alerts_today),
    ]
    if stats.oldest_pending is None:
        lines.append(t("stats-outbox-empty"))
    else:
        lines.append(t("stats-outbox", count=stats.pending, age=age(t, stats.oldest_pending)))
    lines.append(t("stats-sources", count=stats.sources, failing=stats.failing_sources))
    return "\n".join(lines)


async def chat_chart(
    db: Storage, chat_id: int, subscriber: Subscriber | None, t: Texts, default_tz: tzinfo
) -> str | None:
    """The chat's 14-day chart as an outbox-style payload, or None when nothing matched."""
    now = datetime.now(UTC)
    zone = chat_zone(subscriber, default_tz)
    _, read_from, read_to = chart_window(now, zone)
    counts = await db.mention_counts({chat_id: chart_shift(now, zone)}, read_from, read_to)
    return chart_for(counts.get(chat_id, {}), t, now, zone)


async def cmd_stats(
    message: Message,
    db: Storage,
    t: Texts,
    settings: Settings,
    subscriber: Subscriber | None,
    admin: bool = False,
) -> None:
    if admin:
        await message.answer(render_stats(t, await gather_stats(db, datetime.now(UTC))))
    payload = await chat_chart(db, message.chat.id, subscriber, t, settings.tz)
    if payload is None:
        await message.answer(t("stats-chart-empty"))
    else:
        png, caption = await draw_chart_async(payload)
        await message.answer_photo(BufferedInputFile(png, "chart.png"), caption=caption)


async def cmd_stats_admin(
    message: Message, db: Storage, t: Texts, settings: Settings, subscriber: Subscriber | None
) -> None:
    await cmd_stats(message, db, t, settings, subscriber, admin=True)


def build_router() -> Router:
    router = Router(name="stats")
    router.message.register(cmd_stats_admin, Command("stats"), DozorAdmin())
    router.message.register(cmd_stats, Command("stats"))
    return router
