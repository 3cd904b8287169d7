"""/presets: curated topic bundles, subscribed to in one tap and removed as one.

The bundles live in a TOML file an administrator extends without code (`bot/presets.toml`,
or the file PRESETS_FILE names), read once at start; a problem with it is reported in one
line of the log, and bundles with a problem are left out. A bundle's queries are saved with
`preset=<its id>`, so removing the bundle removes exactly what it added (a query the chat had
saved itself stays).
"""

from __future__ import annotations

import contextlib
import logging
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path

from aiogram import Dispatcher, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.config import Settings
from bot.domain import Subscription
from bot.i18n import ENGLISH, RUSSIAN, Texts
from bot.ingest import Matcher
from bot.matching import QueryError, parse_query
from bot.storage import Storage, TooManySubscriptions
from handlers.start import register_chat
from handlers.subscriptions import MAX_SUBSCRIPTIONS
from handlers.texts import escaped

log = logging.getLogger(__name__)

MAX_PRESET_QUERIES = 30
_PRESET_ID = re.compile(r"[a-z0-9_-]{1,20}")
_TEXT_FIELDS = ("title_ru", "title_en", "description_ru", "description_en")


@dataclass(frozen=True, slots=True)
class Preset:
    """A topic bundle: its id (stored with its queries), names and queries (as parsed)."""

    id: str
    title_ru: str
    title_en: str
    description_ru: str
    description_en: str
    queries: tuple[str, ...]

    def title(self, language: str) -> str:
        return self.title_ru if language == RUSSIAN else self.title_en

    def description(self, language: str) -> str:
        return self.description_ru if language == RUSSIAN else self.description_en


@dataclass(frozen=True, slots=True)
class PresetBook:
    """The bundles offered, and what was wrong with the file (one line), if anything."""

    presets: tuple[Preset, ...]
    problem: str | None = None

    def get(self, preset_id: str) -> Preset | None:
        return next((preset for preset in self.presets if preset.id == preset_id), None)


def default_presets_file() -> Path:
    """The bundles shipped with Dozor."""
    return Path(str(resources.files("bot") / "presets.toml"))


def parse_presets(text: str) -> PresetBook:
    """The bundles of a presets file's text; a bundle with a problem is left out and named
    in `problem`. Raises ValueError when the text is not a presets file at all."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML: {exc}") from None
    entries = document.get("preset")
    if not isinstance(entries, list) or not entries:
        raise ValueError("no [[preset]] tables")
    presets: list[Preset] = []
    problems: list[str] = []
    for number, entry in enumerate(entries, start=1):
        try:
            preset = _preset(entry, number)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if any(other.id == preset.id for other in presets):
            problems.append(f"preset {number}: the id {preset.id!r} is used twice")
            continue
        presets.append(preset)
    return PresetBook(tuple(presets), "; ".join(problems) or None)


def _preset(entry: object, number: int) -> Preset:
    """One [[preset]] table, checked; ValueError names the bundle and what is wrong."""
    if not isinstance(entry, dict):
        raise ValueError(f"preset {number} is not a table")
    preset_id = entry.get("id")
    if not isinstance(preset_id, str) or not _PRESET_ID.fullmatch(preset_id):
        raise ValueError(f"preset {number}: id must be 1-20 lower-case letters, digits, - or _")
    name = f"preset {preset_id!r}"
    texts: dict[str, str] = {}
    for field in _TEXT_FIELDS:
        value = entry.get(field)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name}: {field} is missing")
        texts[field] = " ".join(value.split())
    queries = entry.get("queries")
    if not isinstance(queries, list) or not queries:
        raise ValueError(f"{name}: queries must be a list of queries")
    if len(queries) > MAX_PRESET_QUERIES:
        raise ValueError(f"{name}: more than {MAX_PRESET_QUERIES} queries")
    parsed: list[str] = []
    for query in queries:
        if not isinstance(query, str):
            raise ValueError(f"{name}: the query {query!r} is not text")
        try:
            text = parse_query(query).text
        except QueryError as exc:
            raise ValueError(f"{name}: the query {query!r}: {exc}") from None
        if text not in parsed:
            parsed.append(text)
    return Preset(preset_id, queries=tuple(parsed), **texts)


def load_presets(path: Path | None) -> PresetBook:
    """The bundles in `path` (the shipped ones when None); never raises: a file that cannot
    be used gives no bundles and says why."""
    path = path or default_presets_file()
    try:
        book = parse_presets(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return PresetBook((), f"{path}: {exc}")
    if book.problem:
        return PresetBook(book.presets, f"{path}: {book.problem}")
    return book


async def load_on_startup(dispatcher: Dispatcher, settings: Settings) -> None:
    """Read the bundles when the bot starts; a problem is one line in the log."""
    book = load_presets(settings.presets_file)
    if book.problem:
        offered = len(book.presets)
        log.error("presets file unusable in part or whole (%d offered): %s", offered, book.problem)
    dispatcher["presets"] = book


# --- the message and its buttons ------------------------------------------------------


class PresetAction(StrEnum):
    ADD = "a"
    REMOVE = "r"


class PresetButton(CallbackData, prefix="pr"):
    """A press on /presets: add or remove a bundle (its id is at most 20 characters)."""

    action: PresetAction
    preset: str


def _tagged(subscriptions: Sequence[Subscription]) -> dict[str, int]:
    """How many queries of each bundle a chat has."""
    counts: dict[str, int] = {}
    for subscription in subscriptions:
        if subscription.preset:
            counts[subscription.preset] = counts.get(subscription.preset, 0) + 1
    return counts


def render_presets(
    t: Texts, book: PresetBook, subscriptions: Sequence[Subscription]
) -> tuple[str, InlineKeyboardMarkup]:
    """The /presets message: every bundle with what it covers and whether the chat has it,
    and one button each to add it or to remove it."""
    language = t.language if t.language in (RUSSIAN, ENGLISH) else ENGLISH
    have = _tagged(subscriptions)
    blocks = [t("presets-title")]
    builder = InlineKeyboardBuilder()
    for preset in book.presets:
        title = preset.title(language)
        held = have.get(preset.id, 0)
        blocks.append(
            t(
                "presets-item",
                title=escaped(title),
                description=escaped(preset.description(language)),
                count=len(preset.queries),
                held=held,
            )
        )
        if held:
            label = t("presets-button-remove", title=title)
            button = PresetButton(action=PresetAction.REMOVE, preset=preset.id)
        else:
            label = t("presets-button-add", title=title, count=len(preset.queries))
            button = PresetButton(action=PresetAction.ADD, preset=preset.id)
        builder.button(text=label, callback_data=button.pack())
    builder.adjust(1)
    blocks.append(t("presets-footer"))
    return "\n\n".join(blocks), builder.as_markup()


async def cmd_presets(
    message: Message, db: Storage, t: Texts, presets: PresetBook | None = None
) -> None:
    """The bundles, each with its button."""
    if presets is None or not presets.presets:
        key = "presets-broken" if presets is None or presets.problem else "presets-none"
        await message.answer(t(key))
        return
    subscriptions = await db.subscriptions_of(message.chat.id)
    text, keyboard = render_presets(t, presets, subscriptions)
    await message.answer(text, reply_markup=keyboard)


async def cb_preset(
    callback: CallbackQuery,
    callback_data: PresetButton,
    db: Storage,
    matcher: Matcher,
    t: Texts,
    presets: PresetBook | None = None,
) -> None:
    """Add or remove a bundle, then show the message again as it now stands."""
    message = callback.message
    preset = presets.get(callback_data.preset) if presets is not None else None
    if not isinstance(message, Message) or presets is None or preset is None:
        await callback.answer(t("presets-toast-outdated"))
        return
    chat_id = message.chat.id
    alert = False
    if callback_data.action is PresetAction.ADD:
        await register_chat(db, matcher, message.chat, callback.from_user)
        toast, alert = await _add(db, matcher, t, chat_id, preset)
    else:
        removed = await db.remove_preset(chat_id, preset.id)
        for subscription in removed:
            await matcher.remove(subscription.id)
        if removed:
            toast = t("presets-toast-removed", count=len(removed))
        else:
            toast = t("presets-toast-nothing")
    await callback.answer(toast, show_alert=alert)
    # The message as things now stand (changed here, or from another message meanwhile); its
    # marks change with its buttons, so the same buttons mean nothing to update.
    text, keyboard = render_presets(t, presets, await db.subscriptions_of(chat_id))
    shown = message.reply_markup
    if shown is not None and shown.model_dump(exclude_none=True) == keyboard.model_dump(
        exclude_none=True
    ):
        return
    with contextlib.suppress(TelegramBadRequest):  # "message is not modified": a double tap
        await message.edit_text(text, reply_markup=keyboard)


async def _add(
    db: Storage, matcher: Matcher, t: Texts, chat_id: int, preset: Preset
) -> tuple[str, bool]:
    """Subscribe a chat to every query of a bundle it lacks, all or none; the toast, and
    whether it is a refusal to show as an alert (it must be read)."""
    existing = await db.subscriptions_of(chat_id)
    if any(subscription.preset == preset.id for subscription in existing):
        return t("presets-toast-already"), False
    saved = {subscription.query for subscription in existing}
    missing = [query for query in preset.queries if query not in saved]
    if not missing:
        return t("presets-toast-have-all"), False
    if len(existing) + len(missing) > MAX_SUBSCRIPTIONS:
        free = max(0, MAX_SUBSCRIPTIONS - len(existing))
        return _too_many(t, len(missing), free), True
    added: list[Subscription] = []
    try:
        for query in missing:
            subscription = await db.add_subscription(
                chat_id, query, limit=MAX_SUBSCRIPTIONS, preset=preset.id
            )
            if subscription is not None:
                added.append(subscription)
    except TooManySubscriptions:  # another command filled the chat up meanwhile: undo
        await db.remove_preset(chat_id, preset.id)
        return _too_many(t, len(missing), 0), True
    for subscription in added:
        await matcher.add(subscription)
    return t("presets-toast-added", count=len(added), title=preset.title(t.language)), False


def _too_many(t: Texts, needed: int, free: int) -> str:
    return t("presets-toast-too-many", count=needed, free=free, limit=MAX_SUBSCRIPTIONS)


async def cb_malformed(callback: CallbackQuery, t: Texts) -> None:
    """A /presets button whose data does not parse (forged, or from an old version)."""
    await callback.answer(t("presets-toast-outdated"))


def build_router() -> Router:
    router = Router(name="presets")
    router.startup.register(load_on_startup)
    router.message.register(cmd_presets, Command("presets"))
    router.callback_query.register(cb_preset, PresetButton.filter())
    prefix = PresetButton.__prefix__ + PresetButton.__separator__
    router.callback_query.register(cb_malformed, F.data.startswith(prefix))
    return router
