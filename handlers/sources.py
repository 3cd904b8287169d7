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
from bot.sources.health import describe, warning
from bot.sources.links import parse_source
from bot.sources.manager import SourceManager
from bot.storage import Storage
from handlers.replies import answer_blocks
from handlers.texts import code

SOURCE_LINE_CHARS = 600  # one source's line in /sources at most (a long error is cut)
ADD_EXAMPLE = "/addsource https://t.me/militaryrussiaru"


def is_admin(message: Message, settings: Settings) -> bool:
    user = message.from_user
    return user is not None and user.id in settings.admin_ids


async def _refuse(message: Message) -> None:
    await message.answer("This command is for Dozor's administrators.")


async def cmd_sources(message: Message, db: Storage, settings: Settings) -> None:
    """Every watched source with its health; problems first get a ⚠️."""
    if not is_admin(message, settings):
        await _refuse(message)
        return
    sources = await db.list_sources()
    if not sources:
        await message.answer(f"No sources are watched. Add one: {code(ADD_EXAMPLE)}")
        return
    now = datetime.now(UTC)
    blocks = [f"<b>{len(sources)} source(s)</b>"]
    for info in sources:
        line = html.escape(shorten(describe(info, now), SOURCE_LINE_CHARS), quote=False)
        problem = warning(info, now)
        if problem:
            problem = shorten(problem, SOURCE_LINE_CHARS)
            line = f"⚠️ {line}\n    <i>{html.escape(problem, quote=False)}</i>"
        blocks.append(f"• {line}")
    await answer_blocks(message, blocks, more="… and {count} more sources")


def _named(spec: SourceSpec) -> str:
    """A source spec as shown in a reply (cut: a reply must stay one message)."""
    return code(shorten(spec.text, 300))


async def _admin_spec(
    message: Message, command: CommandObject, settings: Settings, example: str
) -> SourceSpec | None:
    """The source an admin named; None (after answering) for non-admins and bad input."""
    if not is_admin(message, settings):
        await _refuse(message)
        return None
    try:
        return parse_source(command.args or "")
    except ValueError as exc:
        await message.answer(
            f"⚠️ {html.escape(shorten(str(exc), 600), quote=False)}\nFor example: {code(example)}"
        )
        return None


async def cmd_addsource(
    message: Message,
    command: CommandObject,
    db: Storage,
    settings: Settings,
    sources: SourceManager | None,
) -> None:
    spec = await _admin_spec(message, command, settings, ADD_EXAMPLE)
    if spec is None:
        return
    if not await db.add_source(spec.text, spec.kind, origin="chat"):
        await message.answer(f"{_named(spec)} is already watched.")
        return
    if sources is not None:
        await sources.sync()
    await message.answer(f"✅ Now watching {_named(spec)}.")


async def cmd_removesource(
    message: Message,
    command: CommandObject,
    db: Storage,
    settings: Settings,
    sources: SourceManager | None,
) -> None:
    spec = await _admin_spec(message, command, settings, "/removesource @militaryrussiaru")
    if spec is None:
        return
    if not await db.remove_source(spec.text):
        await message.answer(f"{_named(spec)} is not watched; /sources lists them.")
        return
    if sources is not None:
        await sources.sync()
    await message.answer(f"🗑 Stopped watching {_named(spec)}. Its posts stay stored.")


def build_router() -> Router:
    router = Router(name="sources")
    router.message.register(cmd_sources, Command("sources"))
    router.message.register(cmd_addsource, Command("addsource"))
    router.message.register(cmd_removesource, Command("removesource"))
    return router
