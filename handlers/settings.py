"""/settings (one message with buttons) and the direct commands behind it: /lang, /timezone,
/digest, /mute, /quiet and /previews.

In a group only its administrators may use these: `handlers.groups.GroupAdminGate` refuses
everyone else before a handler here runs (commands and button presses alike).

Every button names the value it sets (`cfg:<setting>:<value>`), never "the next one", so a
press on an old message, or two quick presses, can only set a value someone chose; a press
whose data the message does not carry (forged, or from a keyboard changed since) gets a
toast and the settings as they are now.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import logging
import re
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import available_timezones

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.config import Settings
from bot.delivery.chats import chat_language, chat_zone, clock_text, moment_text, parse_clock
from bot.digest import digest_time
from bot.domain import Subscriber
from bot.i18n import LANGUAGES, Catalog, Texts
from bot.ingest import Matcher
from bot.storage import Storage
from handlers.start import register
from handlers.texts import code, escaped

log = logging.getLogger(__name__)

# The zones most of our users live in, offered as buttons (with their catalogue label).
COMMON_ZONES = (
    ("Europe/Moscow", "moscow"),
    ("Europe/Kyiv", "kyiv"),
    ("Europe/Minsk", "minsk"),
    ("Europe/London", "london"),
    ("Europe/Berlin", "berlin"),
    ("America/New_York", "new-york"),
    ("UTC", "utc"),
)
ZONE_EXAMPLES = ("Europe/Moscow", "Europe/Kyiv", "America/New_York")
DIGEST_CHOICES = (time(7, 0), time(8, 0), time(9, 0), time(18, 0))
MUTE_CHOICES = (("60", "hour"), ("480", "night"), ("1440", "day"))  # minutes, label
MAX_MUTE = timedelta(days=30)
MAX_ECHO = 64  # characters of a bad value repeated in a reply
OFF = "off"
ON = "on"
_OFF_WORDS = {"off", "no", "none", "0", "выкл", "нет", "откл"}
_ON_WORDS = {"on", "yes", "1", "вкл", "да"}
_LANGUAGE_WORDS = {
    "ru": "ru",
    "russian": "ru",
    "русский": "ru",
    "рус": "ru",
    "en": "en",
    "english": "en",
    "английский": "en",
    "eng": "en",
}
_UNITS = {
    "m": 1,
    "min": 1,
    "mins": 1,
    "minute": 1,
    "minutes": 1,
    "м": 1,
    "мин": 1,
    "минут": 1,
    "минуты": 1,
    "h": 60,
    "hr": 60,
    "hrs": 60,
    "hour": 60,
    "hours": 60,
    "ч": 60,
    "час": 60,
    "часа": 60,
    "часов": 60,
    "d": 1440,
    "day": 1440,
    "days": 1440,
    "д": 1440,
    "дн": 1440,
    "день": 1440,
    "дня": 1440,
    "дней": 1440,
}
# `/digest chart off`, `/digest quiet on`: the words for each option, and its column.
_DIGEST_OPTIONS = {
    "chart": "digest_chart",
    "график": "digest_chart",
    "quiet": "digest_quiet_days",
    "empty": "digest_quiet_days",
    "тихие": "digest_quiet_days",
    "пустые": "digest_quiet_days",
}
_DURATION_PART = re.compile(r"(\d{1,5})\s*([^\W\d_]+)")
_QUIET = re.compile(r"(\S+?)\s*(?:-|–|—|to|до)\s*(\S+)", re.IGNORECASE)


class Setting(StrEnum):
    """What a settings button changes."""

    LANGUAGE = "lang"
    ZONE = "tz"
    DIGEST = "dg"
    MUTE = "mute"
    PREVIEWS = "pv"


class SettingsButton(CallbackData, prefix="cfg"):
    """A press on /settings: the setting and the value it sets (times as `0800`)."""

    setting: Setting
    value: str


# --- reading what people type -----------------------------------------------------------


@functools.cache
def _zone_names() -> dict[str, str]:
    """Every IANA zone name, by its case-folded form (read once; ~50 ms, off the loop)."""
    return {
        name.casefold(): name
        for name in available_timezones()
        if name not in ("localtime", "Factory")
    }


@functools.cache
def _cities() -> dict[str, str]:
    """The last part of each Area/City name (`new_york`), where only one zone has it."""
    found: dict[str, list[str]] = {}
    for name in _zone_names().values():
        if "/" in name:
            found.setdefault(name.rsplit("/", 1)[1].casefold(), []).append(name)
    return {city: names[0] for city, names in found.items() if len(names) == 1}


def find_zone(text: str) -> str | None:
    """The IANA name of a zone typed in any case (`europe/moscow`), or by its city alone
    (`Moscow`, `new york`); None when there is no such zone."""
    key = "_".join(text.strip().split()).casefold()
    return _zone_names().get(key) or _cities().get(key)


def closest_zone(text: str) -> str | None:
    """The known zone most like a mistyped one (`Europe/Moskow` → `Europe/Moscow`)."""
    key = "_".join(text.strip().split()).casefold()
    names = _zone_names()
    close = difflib.get_close_matches(key, list(names), n=1, cutoff=0.75)
    if close:
        return names[close[0]]
    cities = _cities()
    close = difflib.get_close_matches(key, list(cities), n=1, cutoff=0.75)
    return cities[close[0]] if close else None


def parse_duration(text: str) -> timedelta | None:
    """`2h`, `30m`, `1d`, `1h30m`, `2 ч` as a duration; None when not one (or zero)."""
    compact = text.strip().casefold()
    position, minutes = 0, 0
    for match in _DURATION_PART.finditer(compact):
        if compact[position : match.start()].strip():
            return None
        unit = _UNITS.get(match[2])
        if unit is None:
            return None
        minutes += int(match[1]) * unit
        position = match.end()
    if position == 0 or compact[position:].strip() or minutes <= 0:
        return None
    return timedelta(minutes=minutes)


def parse_quiet(text: str) -> tuple[time, time] | None:
    """`23:00-08:00` (also with –, — or `to`) as start and end; None when not that."""
    match = _QUIET.fullmatch(text.strip())
    if match is None:
        return None
    start, end = parse_clock(match[1]), parse_clock(match[2])
    if start is None or end is None:
        return None
    return start, end


def _switch(text: str) -> bool | None:
    word = text.strip().casefold()
    if word in _ON_WORDS:
        return True
    if word in _OFF_WORDS:
        return False
    return None


def _on_off(value: bool) -> str:
    return ON if value else OFF


# --- the settings message ---------------------------------------------------------------


def settings_text(
    t: Texts, subscriber: Subscriber | None, service: Settings, now: datetime, *, group: bool
) -> str:
    """What /settings shows: every setting's current value."""
    tz = chat_zone(subscriber, service.tz)
    language = chat_language(subscriber) if subscriber is not None else t.language
    lines = [
        t("settings-title"),
        "",
        t("settings-language", language=t(f"settings-language-{language}")),
        t("settings-zone", zone=escaped(str(tz)), now=moment_text(t, now, tz)),
    ]
    if subscriber is not None and not subscriber.digest_enabled:
        lines.append(t("settings-digest-off"))
    else:
        at = digest_time(subscriber, service.digest_time) if subscriber else service.digest_time
        lines.append(t("settings-digest-at", time=clock_text(at)))
        chart = subscriber is None or subscriber.digest_chart
        quiet = subscriber is not None and subscriber.digest_quiet_days
        lines.append(t("settings-digest-extras", chart=_on_off(chart), quiet=_on_off(quiet)))
    muted = subscriber.muted_until if subscriber is not None else None
    if muted is not None and muted > now:
        lines.append(t("settings-alerts-muted", until=moment_text(t, muted, tz)))
    else:
        lines.append(t("settings-alerts-on"))
    start = parse_clock(subscriber.quiet_start) if subscriber else None
    end = parse_clock(subscriber.quiet_end) if subscriber else None
    if start is not None and end is not None:
        lines.append(t("settings-quiet-hours", start=clock_text(start), end=clock_text(end)))
    else:
        lines.append(t("settings-quiet-none"))
    previews = subscriber is not None and subscriber.link_previews
    lines.append(t("settings-previews-on" if previews else "settings-previews-off"))
    lines += [
        "",
        t(
            "settings-commands",
            timezone=code("/timezone Area/City"),
            digest=code("/digest 08:30"),
            mute=code("/mute 2h"),
            quiet=code("/quiet 23:00-08:00"),
        ),
    ]
    if group:
        lines.append(t("settings-group-note"))
    return "\n".join(lines)


def _button(
    text: str, setting: Setting, value: str, *, chosen: bool = False
) -> InlineKeyboardButton:
    data = SettingsButton(setting=setting, value=value).pack()
    return InlineKeyboardButton(text=f"✓ {text}" if chosen else text, callback_data=data)


def settings_keyboard(
    t: Texts, subscriber: Subscriber | None, service: Settings, now: datetime
) -> InlineKeyboardMarkup:
    """Buttons for each setting; the current value is ticked."""
    language = chat_language(subscriber) if subscriber is not None else t.language
    zone = str(chat_zone(subscriber, service.tz))
    builder = InlineKeyboardBuilder()
    builder.row(
        *(
            _button(
                t(f"settings-language-{option}"),
                Setting.LANGUAGE,
                option,
                chosen=option == language,
            )
            for option in LANGUAGES
        )
    )
    zones = [
        _button(t(f"settings-button-zone-{key}"), Setting.ZONE, name, chosen=name == zone)
        for name, key in COMMON_ZONES
    ]
    builder.row(*zones[:3])
    builder.row(*zones[3:6])
    builder.row(*zones[6:])
    enabled = subscriber is None or subscriber.digest_enabled
    at = digest_time(subscriber, service.digest_time) if subscriber else service.digest_time
    builder.row(
        *(
            _button(
                t("settings-button-digest", time=clock_text(choice)),
                Setting.DIGEST,
                choice.strftime("%H%M"),
                chosen=enabled and choice == at,
            )
            for choice in DIGEST_CHOICES
        ),
        _button(t("settings-button-digest-off"), Setting.DIGEST, OFF, chosen=not enabled),
    )
    muted_until = subscriber.muted_until if subscriber is not None else None
    muted = muted_until is not None and muted_until > now
    mutes = [
        _button(t(f"settings-button-mute-{label}"), Setting.MUTE, minutes)
        for minutes, label in MUTE_CHOICES
    ]
    if muted:
        mutes.append(_button(t("settings-button-unmute"), Setting.MUTE, OFF))
    builder.row(*mutes)
    previews = subscriber is not None and subscriber.link_previews
    builder.row(
        _button(t("settings-button-previews-on"), Setting.PREVIEWS, ON, chosen=previews),
        _button(t("settings-button-previews-off"), Setting.PREVIEWS, OFF, chosen=not previews),
    )
    return builder.as_markup()


# --- changing settings ------------------------------------------------------------------


async def _chat(
    message: Message, db: Storage, matcher: Matcher, subscriber: Subscriber | None
) -> None:
    """Register the chat on its first use (or back after it blocked the bot)."""
    if subscriber is None or not subscriber.active:
        await register(message, db, matcher)


async def _change(db: Storage, chat_id: int, **changes: object) -> Subscriber | None:
    """Save settings; alerts held under the old mute or quiet hours are looked at afresh."""
    updated = await db.update_subscriber(chat_id, **changes)
    if {"muted_until", "quiet_start", "quiet_end", "timezone"} & set(changes):
        await db.release_alerts(chat_id)
    return updated


def _examples(*commands: str) -> str:
    return ", ".join(code(command) for command in commands)


async def cmd_settings(
    message: Message,
    db: Storage,
    matcher: Matcher,
    settings: Settings,
    t: Texts,
    subscriber: Subscriber | None,
) -> None:
    """The chat's settings in one message, with buttons to change them."""
    await _chat(message, db, matcher, subscriber)
    current = await db.get_subscriber(message.chat.id)
    now = datetime.now(UTC)
    group = message.chat.type != "private"
    await message.answer(
        settings_text(t, current, settings, now, group=group),
        reply_markup=settings_keyboard(t, current, settings, now),
    )


async def cmd_lang(
    message: Message,
    command: CommandObject,
    db: Storage,
    matcher: Matcher,
    catalog: Catalog,
    t: Texts,
    subscriber: Subscriber | None,
) -> None:
    """`/lang ru` or `/lang en`: the chat's language, whatever its members' Telegram says."""
    value = (command.args or "").strip()
    choices = {"ru": code("/lang ru"), "en": code("/lang en")}
    if not value:
        await message.answer(
            t("settings-lang-usage", language=t(f"settings-language-{t.language}"), **choices)
        )
        return
    language = _LANGUAGE_WORDS.get(value.casefold())
    if language is None or language not in LANGUAGES:
        await message.answer(
            t("settings-lang-unknown", language=code(value[:MAX_ECHO]), **choices)
        )
        return
    await _chat(message, db, matcher, subscriber)
    await _change(db, message.chat.id, language=language)
    await message.answer(catalog.texts(language)("settings-lang-done"))


async def cmd_timezone(
    message: Message,
    command: CommandObject,
    db: Storage,
    matcher: Matcher,
    settings: Settings,
    t: Texts,
    subscriber: Subscriber | None,
) -> None:
    """`/timezone Europe/Moscow`: the zone of every time the chat is shown."""
    value = (command.args or "").strip()
    examples = _examples(*(f"/timezone {zone}" for zone in ZONE_EXAMPLES))
    if not value:
        zone = chat_zone(subscriber, settings.tz)
        await message.answer(t("settings-zone-usage", zone=escaped(str(zone)), examples=examples))
        return
    # Listing the zones reads tzdata's files: once, and not on the event loop.
    name = await asyncio.to_thread(find_zone, value[: MAX_ECHO * 2])
    if name is None:
        suggestion = await asyncio.to_thread(closest_zone, value[: MAX_ECHO * 2])
        shown = code(value[:MAX_ECHO])
        if suggestion is not None:
            answer = t(
                "settings-zone-suggest",
                zone=shown,
                suggestion=code(f"/timezone {suggestion}"),
                examples=examples,
            )
        else:
            answer = t("settings-zone-unknown", zone=shown, examples=examples)
        await message.answer(answer)
        return
    await _chat(message, db, matcher, subscriber)
    updated = await _change(db, message.chat.id, timezone=name)
    tz = chat_zone(updated, settings.tz)
    now = moment_text(t, datetime.now(UTC), tz)
    await message.answer(t("settings-zone-done", zone=escaped(name), now=now))


async def cmd_digest(
    message: Message,
    command: CommandObject,
    db: Storage,
    matcher: Matcher,
    settings: Settings,
    t: Texts,
    subscriber: Subscriber | None,
) -> None:
    """`/digest 08:30`, `/digest off`, `/digest on`: when the daily digest comes, if at all."""
    value = (command.args or "").strip()
    example, off = code("/digest 08:30"), code("/digest off")
    zone = escaped(str(chat_zone(subscriber, settings.tz)))
    at = digest_time(subscriber, settings.digest_time) if subscriber else settings.digest_time
    if not value:
        if subscriber is not None and not subscriber.digest_enabled:
            await message.answer(t("settings-digest-usage-off", example=example))
        else:
            await message.answer(
                t(
                    "settings-digest-usage",
                    time=clock_text(at),
                    zone=zone,
                    example=example,
                    off=off,
                )
            )
        return
    option, _, rest = value.partition(" ")
    extra = _DIGEST_OPTIONS.get(option.casefold())
    if extra is not None:
        await _digest_option(message, db, matcher, t, subscriber, extra, rest)
        return
    switch = _switch(value)
    chosen = parse_clock(value)
    if switch is None and chosen is None:
        await message.answer(
            t("settings-digest-invalid", value=code(value[:MAX_ECHO]), example=example, off=off)
        )
        return
    await _chat(message, db, matcher, subscriber)
    if switch is False:
        await _change(db, message.chat.id, digest_enabled=False)
        await message.answer(t("settings-digest-off-done", example=example))
        return
    if chosen is not None:
        at = chosen
        await _change(db, message.chat.id, digest_enabled=True, digest_time=clock_text(at))
    else:
        await _change(db, message.chat.id, digest_enabled=True)
    await message.answer(t("settings-digest-done", time=clock_text(at), zone=zone))


async def _digest_option(
    message: Message,
    db: Storage,
    matcher: Matcher,
    t: Texts,
    subscriber: Subscriber | None,
    option: str,
    value: str,
) -> None:
    """`/digest chart off`, `/digest quiet on`: the chart with the digest, and a digest that
    says "nothing matched" on quiet days."""
    switch = _switch(value)
    if switch is None:
        current = (
            (subscriber is None or subscriber.digest_chart)
            if option == "digest_chart"
            else (subscriber is not None and subscriber.digest_quiet_days)
        )
        await message.answer(
            t(f"settings-{option.replace('_', '-')}-usage", state=_on_off(current))
        )
        return
    await _chat(message, db, matcher, subscriber)
    await _change(db, message.chat.id, **{option: switch})
    await message.answer(t(f"settings-{option.replace('_', '-')}-done", state=_on_off(switch)))


async def cmd_mute(
    message: Message,
    command: CommandObject,
    db: Storage,
    matcher: Matcher,
    settings: Settings,
    t: Texts,
    subscriber: Subscriber | None,
) -> None:
    """`/mute 2h` (30m, 1d, 1h30m) holds alerts until then; `/mute off` ends it."""
    value = (command.args or "").strip()
    examples = _examples("/mute 2h", "/mute 30m", "/mute 1d", "/mute off")
    off = code("/mute off")
    now = datetime.now(UTC)
    tz = chat_zone(subscriber, settings.tz)
    if not value:
        muted = subscriber.muted_until if subscriber is not None else None
        if muted is not None and muted > now:
            shown = moment_text(t, muted, tz)
            await message.answer(t("settings-mute-usage-muted", until=shown, off=off))
        else:
            await message.answer(t("settings-mute-usage", examples=examples))
        return
    if _switch(value) is False:
        await _chat(message, db, matcher, subscriber)
        await _change(db, message.chat.id, muted_until=None)
        await message.answer(t("settings-mute-off-done"))
        return
    duration = parse_duration(value)
    if duration is None or duration > MAX_MUTE:
        await message.answer(
            t("settings-mute-invalid", value=code(value[:MAX_ECHO]), examples=examples)
        )
        return
    await _chat(message, db, matcher, subscriber)
    until = now + duration
    await _change(db, message.chat.id, muted_until=until)
    await message.answer(t("settings-mute-done", until=moment_text(t, until, tz), off=off))


async def cmd_quiet(
    message: Message,
    command: CommandObject,
    db: Storage,
    matcher: Matcher,
    settings: Settings,
    t: Texts,
    subscriber: Subscriber | None,
) -> None:
    """`/quiet 23:00-08:00`: alerts wait through these hours every day; `/quiet off`."""
    value = (command.args or "").strip()
    example, off = code("/quiet 23:00-08:00"), code("/quiet off")
    zone = escaped(str(chat_zone(subscriber, settings.tz)))
    if not value:
        start = parse_clock(subscriber.quiet_start) if subscriber else None
        end = parse_clock(subscriber.quiet_end) if subscriber else None
        if start is not None and end is not None:
            answer = t(
                "settings-quiet-usage-set",
                start=clock_text(start),
                end=clock_text(end),
                zone=zone,
                example=example,
                off=off,
            )
        else:
            answer = t("settings-quiet-usage", example=example)
        await message.answer(answer)
        return
    if _switch(value) is False:
        await _chat(message, db, matcher, subscriber)
        await _change(db, message.chat.id, quiet_start=None, quiet_end=None)
        await message.answer(t("settings-quiet-off-done"))
        return
    hours = parse_quiet(value)
    if hours is None:
        await message.answer(
            t("settings-quiet-invalid", value=code(value[:MAX_ECHO]), example=example, off=off)
        )
        return
    start, end = hours
    if start == end:
        await message.answer(t("settings-quiet-empty", example=example))
        return
    await _chat(message, db, matcher, subscriber)
    await _change(db, message.chat.id, quiet_start=clock_text(start), quiet_end=clock_text(end))
    await message.answer(
        t("settings-quiet-done", start=clock_text(start), end=clock_text(end), zone=zone)
    )


async def cmd_previews(
    message: Message,
    command: CommandObject,
    db: Storage,
    matcher: Matcher,
    t: Texts,
    subscriber: Subscriber | None,
) -> None:
    """`/previews on|off`: whether alerts show a preview of the post's link."""
    value = (command.args or "").strip()
    on, off = code("/previews on"), code("/previews off")
    if not value:
        shown = subscriber is not None and subscriber.link_previews
        key = "settings-previews-usage-on" if shown else "settings-previews-usage-off"
        await message.answer(t(key, on=on, off=off))
        return
    switch = _switch(value)
    if switch is None:
        await message.answer(
            t("settings-previews-invalid", value=code(value[:MAX_ECHO]), on=on, off=off)
        )
        return
    await _chat(message, db, matcher, subscriber)
    await _change(db, message.chat.id, link_previews=switch)
    await message.answer(
        t("settings-previews-done-on" if switch else "settings-previews-done-off")
    )


# --- buttons ----------------------------------------------------------------------------


def offered(message: Message, data: str) -> bool:
    """Whether the message carries a button with exactly this data (else: forged or old)."""
    markup = message.reply_markup
    if markup is None:
        return False
    return any(button.callback_data == data for row in markup.inline_keyboard for button in row)


def _press_changes(button: SettingsButton, now: datetime) -> dict[str, object] | None:
    """The settings a press sets; None when its value is not one the keyboard offers."""
    value = button.value
    if button.setting is Setting.LANGUAGE:
        return {"language": value} if value in LANGUAGES else None
    if button.setting is Setting.ZONE:
        return {"timezone": value} if value in dict(COMMON_ZONES) else None
    if button.setting is Setting.DIGEST:
        if value == OFF:
            return {"digest_enabled": False}
        choices = {choice.strftime("%H%M"): choice for choice in DIGEST_CHOICES}
        if value not in choices:
            return None
        return {"digest_enabled": True, "digest_time": clock_text(choices[value])}
    if button.setting is Setting.MUTE:
        if value == OFF:
            return {"muted_until": None}
        if value not in dict(MUTE_CHOICES):
            return None
        return {"muted_until": now + timedelta(minutes=int(value))}
    if value not in (ON, OFF):
        return None
    return {"link_previews": value == ON}


async def show_settings(
    message: Message, t: Texts, subscriber: Subscriber | None, service: Settings, now: datetime
) -> None:
    """Edit the settings message in place; the same content again is no change."""
    text = settings_text(t, subscriber, service, now, group=message.chat.type != "private")
    keyboard = settings_keyboard(t, subscriber, service, now)
    try:
        await message.edit_text(text, reply_markup=keyboard)
    except TelegramBadRequest as exc:
        if "message is not modified" not in exc.message:
            log.info("settings in chat %d not updated: %s", message.chat.id, exc)


async def press(
    callback: CallbackQuery,
    button: SettingsButton,
    db: Storage,
    catalog: Catalog,
    settings: Settings,
    t: Texts,
    subscriber: Subscriber | None,
) -> str:
    """Apply a press on /settings and show the result; returns the toast."""
    message = callback.message
    if not isinstance(message, Message) or subscriber is None:
        return t("settings-stale")
    now = datetime.now(UTC)
    changes = _press_changes(button, now) if offered(message, callback.data or "") else None
    if changes is None:
        await show_settings(message, t, subscriber, settings, now)
        return t("settings-stale")
    updated = await _change(db, message.chat.id, **changes)
    texts = catalog.texts(chat_language(updated)) if updated is not None else t
    await show_settings(message, texts, updated, settings, now)
    return texts("settings-saved")


async def cb_settings(
    callback: CallbackQuery,
    callback_data: SettingsButton,
    db: Storage,
    catalog: Catalog,
    settings: Settings,
    t: Texts,
    subscriber: Subscriber | None,
) -> None:
    toast = ""
    try:
        toast = await press(callback, callback_data, db, catalog, settings, t, subscriber)
    finally:
        await callback.answer(toast)  # always: the button's spinner stops


async def cb_malformed(callback: CallbackQuery, t: Texts) -> None:
    """A settings button whose data does not parse: forged, or from an older version."""
    await callback.answer(t("settings-stale"))


def is_settings_button(data: str | None) -> bool:
    prefix = SettingsButton.__prefix__ + SettingsButton.__separator__
    return data is not None and data.startswith(prefix)


def build_router() -> Router:
    router = Router(name="settings")
    router.message.register(cmd_settings, Command("settings"))
    router.message.register(cmd_lang, Command("lang", "language"))
    router.message.register(cmd_timezone, Command("timezone", "tz"))
    router.message.register(cmd_digest, Command("digest"))
    router.message.register(cmd_mute, Command("mute"))
    router.message.register(cmd_quiet, Command("quiet"))
    router.message.register(cmd_previews, Command("previews"))
    router.callback_query.register(cb_settings, SettingsButton.filter())
    router.callback_query.register(cb_malformed, F.data.func(is_settings_button))
    return router
