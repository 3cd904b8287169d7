"""Admin commands: /sources, /addsource, /removesource."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.config import Settings
from bot.delivery.render import shorten
from bot.domain import SourceSpec
from bot.i18n import Texts
from bot.sources.health import describe, warning
from bot.sources.links import SourceError, parse_source
from bot.sources.manager import SourceManager
from bot.storage import Storage
from handlers.replies import answer_blocks
from handlers.texts import code

SOURCE_LINE_CHARS = 600  # one source's line in /sources at most (a long error is cut)
ADD_EXAMPLE = "/addsource https://t.me/militaryrussiaru"


def is_admin(message: Message, settings: Settings) -> bool:
    user = message.from_user
    return user is not None and user.id in settings.admin_ids


async def _refuse(message: Message, t: Texts) -> None:
    await message.answer(t("admin-only"))


async def cmd_sources(message: Message, db: Storage, settings: Settings, t: Texts) -> None:
    """Every watched source with its health; problems first get a ⚠️."""
    if not is_admin(message, settings):
        await _refuse(message, t)
        return
    sources = await db.list_sources()
    if not sources:
        await message.answer(t("sources-empty", example=code(ADD_EXAMPLE)))
        return
    now = datetime.now(UTC)
    blocks = [t("sources-title", count=len(sources))]
    for info in sources:
        line = html.escape(shorten(describe(t, info, now), SOURCE_LINE_CHARS), quote=False)
        problem = warning(t, info, now)
        if problem:
            problem = shorten(problem, SOURCE_LINE_CHARS)
            line = f"⚠️ {line}\n    <i>{html.escape(problem, quote=False)}</i>"
        blocks.append(f"• {line}")
    await answer_blocks(message, blocks, more=lambda count: t("sources-more", count=count))


def _named(spec: SourceSpec) -> str:
    """A source spec as shown in a reply (cut: a reply must stay one message)."""
    return code(shorten(spec.text, 300))


async def _admin_spec(
    message: Message, command: CommandObject, settings: Settings, example: str, t: Texts
) -> SourceSpec | None:
    """The source an admin named; None (after answering) for non-admins and bad input."""
    if not is_admin(message, settings):
        await _refuse(message, t)
        return None
    try:
        return parse_source(command.args or "")
    except SourceError as exc:
        error = t(f"source-error-{exc.key}", **{k: code(v) for k, v in exc.details.items()})
        await message.answer(t("source-bad-spec", error=error, example=code(example)))
        return None


async def cmd_addsource(
    message: Message,
    command: CommandObject,
    db: Storage,
    settings: Settings,
    sources: SourceManager | None,
    t: Texts,
) -> None:
    spec = await _admin_spec(message, command, settings, ADD_EXAMPLE, t)
    if spec is None:
        return
    if not await db.add_source(spec.text, spec.kind, origin="chat"):
        await message.answer(t("source-already", source=_named(spec)))
        return
    if sources is not None:
        await sources.sync()
    await message.answer(t("source-added", source=_named(spec)))


async def cmd_removesource(
    message: Message,
    command: CommandObject,
    db: Storage,
    settings: Settings,
    sources: SourceManager | None,
    t: Texts,
) -> None:
    spec = await _admin_spec(message, command, settings, "/removesource @militaryrussiaru", t)
    if spec is None:
        return
    if not await db.remove_source(spec.text):
        await message.answer(t("source-not-watched", source=_named(spec)))
        return
    if sources is not None:
        await sources.sync()
    await message.answer(t("source-removed", source=_named(spec)))


def build_router() -> Router:
    router = Router(name="sources")
    router.message.register(cmd_sources, Command("sources"))
    router.message.register(cmd_addsource, Command("addsource"))
    router.message.register(cmd_removesource, Command("removesource"))
    return router
