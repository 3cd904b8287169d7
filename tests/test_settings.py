"""Personal settings: /settings with its buttons and the commands behind it, in English and in
Russian, through the real dispatcher and the stand-in Bot API; mutes and quiet hours holding
alerts (tables of datetimes over clock changes, and the outbox worker on a controlled clock);
alerts in the chat's language, zone and link-preview choice."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot

from bot.config import Settings
from bot.delivery.chats import (
    held_until,
    in_quiet_hours,
    moment_text,
    next_wall_time,
    wall_instants,
)
from bot.delivery.outbox import OutboxWorker
from bot.delivery.sender import Pacer, TelegramSender
from bot.digest import queue_digests
from bot.domain import Post, Span, Subscriber
from bot.i18n import Catalog
from bot.ingest import Matcher
from bot.storage import Storage
from bot.storage.sqlite import MatchRecord
from handlers.settings import (
    Setting,
    SettingsButton,
    closest_zone,
    find_zone,
    parse_duration,
    parse_quiet,
)
from tests.botapi import GROUP_ANONYMOUS_BOT_ID, CallbackAnswer, FakeBotAPI, buttons
from tests.conftest import USER, Chat, polling

CATALOG = Catalog(strict=True)
MOSCOW = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
GROUP = -100_600
ADMIN = 611
MEMBER = 612


def _at(text: str) -> datetime:
    """`2026-11-20 07:59` as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _button(setting: Setting, value: str) -> str:
    return SettingsButton(setting=setting, value=value).pack()


# --- held_until: tables of datetimes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "quiet", "muted", "now", "until"),
    [
        # zone, quiet hours (local), muted until (UTC), now (UTC), alerts held until (UTC)
        ("UTC", "23:00-08:00", None, "2026-11-20 22:59", None),
        ("UTC", "23:00-08:00", None, "2026-11-20 23:00", "2026-11-21 08:00"),
        ("UTC", "23:00-08:00", None, "2026-11-21 03:00", "2026-11-21 08:00"),
        ("UTC", "23:00-08:00", None, "2026-11-21 07:59:59", "2026-11-21 08:00"),
        ("UTC", "23:00-08:00", None, "2026-11-21 08:00", None),
        ("UTC", "13:00-14:00", None, "2026-11-21 13:30", "2026-11-21 14:00"),  # same day
        ("UTC", "13:00-14:00", None, "2026-11-21 14:30", None),
        ("Europe/Moscow", "23:00-08:00", None, "2026-11-20 20:30", "2026-11-21 05:00"),
        ("Europe/Moscow", "23:00-08:00", None, "2026-11-20 19:59", None),  # 22:59 MSK
        ("Europe/Moscow", "00:00-06:00", None, "2026-11-20 21:00", "2026-11-21 03:00"),
        # Berlin enters summer time on 29 March 2026 at 01:00 UTC (02:00 CET → 03:00 CEST).
        ("Europe/Berlin", "22:00-07:00", None, "2026-03-28 23:00", "2026-03-29 05:00"),
        ("Europe/Berlin", "01:00-02:30", None, "2026-03-29 00:30", "2026-03-29 01:00"),  # gap
        ("Europe/Berlin", "02:30-04:00", None, "2026-03-29 01:00", "2026-03-29 02:00"),
        ("Europe/Berlin", "02:30-04:00", None, "2026-03-29 00:59", None),  # 01:59 CET
        # ... and leaves it on 25 October 2026 at 01:00 UTC (03:00 CEST → 02:00 CET).
        ("Europe/Berlin", "22:00-07:00", None, "2026-10-24 21:00", "2026-10-25 06:00"),
        ("Europe/Berlin", "01:00-02:30", None, "2026-10-25 00:10", "2026-10-25 00:30"),
        ("Europe/Berlin", "01:00-02:30", None, "2026-10-25 00:45", None),  # 02:45 CEST
        ("Europe/Berlin", "01:00-02:30", None, "2026-10-25 01:10", "2026-10-25 01:30"),  # again
        # New York leaves summer time on 1 November 2026 at 06:00 UTC (02:00 EDT → 01:00 EST).
        ("America/New_York", "00:00-01:30", None, "2026-11-01 05:00", "2026-11-01 05:30"),
        ("America/New_York", "00:00-01:30", None, "2026-11-01 06:10", "2026-11-01 06:30"),
        ("America/New_York", "23:00-07:00", None, "2026-11-01 03:00", "2026-11-01 12:00"),
        # Mutes, alone and with quiet hours.
        ("UTC", None, "2026-11-20 12:00", "2026-11-20 11:00", "2026-11-20 12:00"),
        ("UTC", None, "2026-11-20 12:00", "2026-11-20 12:00", None),
        ("UTC", None, "2026-11-20 10:00", "2026-11-20 11:00", None),  # a mute long over
        ("UTC", "23:00-08:00", "2026-11-20 23:30", "2026-11-20 22:00", "2026-11-21 08:00"),
        ("UTC", "23:00-08:00", "2026-11-21 09:00", "2026-11-21 02:00", "2026-11-21 09:00"),
        ("UTC", "23:00-23:00", None, "2026-11-20 23:30", None),  # no length: no quiet hours
        ("Mars/Phobos", "23:00-08:00", None, "2026-11-20 23:30", "2026-11-21 08:00"),  # UTC
    ],
)
def test_held_until(
    zone: str, quiet: str | None, muted: str | None, now: str, until: str | None
) -> None:
    start, end = quiet.split("-") if quiet else (None, None)
    subscriber = Subscriber(
        1,
        "analyst",
        True,
        _at("2026-01-01 00:00"),
        timezone=zone,
        quiet_start=start,
        quiet_end=end,
        muted_until=_at(muted) if muted else None,
    )
    assert held_until(subscriber, _at(now), UTC) == (_at(until) if until else None)


@pytest.mark.parametrize(
    ("zone", "quiet", "day"),
    [
        ("Europe/Berlin", ("22:00", "07:00"), "2026-03-28 12:00"),
        ("Europe/Berlin", ("01:30", "02:30"), "2026-03-28 12:00"),
        ("Europe/Berlin", ("02:15", "02:45"), "2026-10-24 12:00"),
        ("Europe/Berlin", ("23:00", "02:30"), "2026-10-24 12:00"),
        ("America/New_York", ("01:00", "01:45"), "2026-10-31 12:00"),
        ("Europe/Moscow", ("23:00", "08:00"), "2026-11-20 12:00"),
    ],
)
def test_a_held_chat_is_released_exactly_when_its_quiet_hours_end(
    zone: str, quiet: tuple[str, str], day: str
) -> None:
    # Every five minutes over a day with a clock change: alerts wait exactly while the clock
    # is inside the quiet hours, and go the moment it leaves them.
    tz = ZoneInfo(zone)
    start, end = time.fromisoformat(quiet[0]), time.fromisoformat(quiet[1])
    subscriber = Subscriber(
        1,
        "a",
        True,
        _at("2026-01-01 00:00"),
        timezone=zone,
        quiet_start=quiet[0],
        quiet_end=quiet[1],
    )
    for step in range(0, 36 * 60, 5):
        now = _at(day) + timedelta(minutes=step)
        until = held_until(subscriber, now, UTC)
        assert (until is not None) == in_quiet_hours(now, start, end, tz), now
        if until is not None:
            assert until > now
            assert not in_quiet_hours(until, start, end, tz), (now, until)
            assert in_quiet_hours(until - timedelta(seconds=1), start, end, tz), (now, until)


@pytest.mark.parametrize(
    ("day", "at", "zone", "moments"),
    [
        ("2026-11-20", "08:00", "Europe/Berlin", ["2026-11-20 07:00"]),
        ("2026-03-29", "02:30", "Europe/Berlin", ["2026-03-29 01:00"]),  # skipped: the jump
        ("2026-10-25", "02:30", "Europe/Berlin", ["2026-10-25 00:30", "2026-10-25 01:30"]),
        ("2026-03-08", "02:00", "America/New_York", ["2026-03-08 07:00"]),
        ("2026-11-01", "01:00", "America/New_York", ["2026-11-01 05:00", "2026-11-01 06:00"]),
    ],
)
def test_wall_instants(day: str, at: str, zone: str, moments: list[str]) -> None:
    found = wall_instants(
        datetime.fromisoformat(day).date(), time.fromisoformat(at), ZoneInfo(zone)
    )
    assert found == [_at(moment) for moment in moments]


def test_next_wall_time_is_strictly_after() -> None:
    eight = time(8, 0)
    assert next_wall_time(_at("2026-11-20 07:00"), eight, MOSCOW) == _at("2026-11-21 05:00")
    assert next_wall_time(_at("2026-11-20 04:59"), eight, MOSCOW) == _at("2026-11-20 05:00")


# --- what people type ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("2h", 120),
        ("30m", 30),
        ("1d", 1440),
        ("1h30m", 90),
        ("1h 30m", 90),
        ("2 H", 120),
        ("2 ч", 120),
        ("90 мин", 90),
        ("1 день", 1440),
        ("3 hours", 180),
        ("", None),
        ("2", None),
        ("2x", None),
        ("h", None),
        ("0m", None),
        ("-1h", None),
        ("2h and more", None),
    ],
)
def test_parse_duration(text: str, minutes: int | None) -> None:
    expected = timedelta(minutes=minutes) if minutes is not None else None
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("23:00-08:00", ("23:00", "08:00")),
        ("23:00 – 08:00", ("23:00", "08:00")),
        ("9.00 to 17.30", ("09:00", "17:30")),
        ("22:00 до 7:00", ("22:00", "07:00")),
        ("23-08", None),
        ("25:00-08:00", None),
        ("23:00", None),
    ],
)
def test_parse_quiet(text: str, hours: tuple[str, str] | None) -> None:
    expected = (time.fromisoformat(hours[0]), time.fromisoformat(hours[1])) if hours else None
    assert parse_quiet(text) == expected


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("Europe/Moscow", "Europe/Moscow"),
        ("europe/moscow", "Europe/Moscow"),
        ("Moscow", "Europe/Moscow"),
        ("new york", "America/New_York"),
        ("utc", "UTC"),
        ("KYIV", "Europe/Kyiv"),
        ("Mars/Phobos", None),
        ("../../etc/passwd", None),
    ],
)
def test_find_zone(text: str, zone: str | None) -> None:
    assert find_zone(text) == zone


def test_a_mistyped_zone_has_a_suggestion() -> None:
    assert closest_zone("Europe/Moskow") == "Europe/Moscow"
    assert closest_zone("Berln") == "Europe/Berlin"
    assert closest_zone("qqqqqq") is None


# --- through the dispatcher ---------------------------------------------------------------------

# Words allowed in a Russian reply though written in Latin letters: zone names and labels,
# a language's own name, and the words a command takes.
_LATIN_ALLOWED = {
    "UTC",
    "MSK",
    "EST",
    "EDT",
    "Europe",
    "Moscow",
    "Berlin",
    "America",
    "New_York",
    "Kyiv",
    "English",
    "off",
}


def english_left(html: str) -> set[str]:
    """Latin words of a reply outside <code> (where commands are) that are not allowed."""
    text = re.sub(r"<code>.*?</code>", "", html, flags=re.DOTALL)
    text = re.sub(r"<[^>]+>", "", text)
    return {word for word in re.findall(r"[A-Za-z_]{3,}", text) if word not in _LATIN_ALLOWED}


async def _say(api: FakeBotAPI, text: str, language: str, chat_id: int = USER) -> str:
    return await api.say(chat_id, text, user_id=USER, language_code=language)


MOSCOW_ZONE = (
    "/timezone europe/moscow",
    "Time zone: Europe/Moscow",
    "Часовой пояс: Europe/Moscow",
)
# Conversations of (command, what the reply says in English, ... in Russian), each short
# enough for the input throttle (a burst of 10), with the settings they leave.
CONVERSATIONS = {
    "lang": (
        [
            ("/lang", "I write here in English", "Язык здесь: Русский"),
            ("/lang xx", "I don't speak", "я не знаю"),
            ("/lang ru", "Теперь я пишу здесь по-русски", "Теперь я пишу здесь по-русски"),
        ],
        {"language": "ru"},
    ),
    "timezone": (
        [
            ("/timezone", "Time zone: UTC", "Часовой пояс: UTC"),
            ("/timezone Mars/Phobos", "I don't know the time zone", "я не знаю"),
            ("/timezone Europe/Moskow", "Did you mean", "Может быть"),
            MOSCOW_ZONE,
            ("/timezone", "Time zone: Europe/Moscow", "Часовой пояс: Europe/Moscow"),
            ("/timezone New York", "Time zone: America/New_York", "America/New_York"),
        ],
        {"timezone": "America/New_York"},
    ),
    "digest": (
        [
            MOSCOW_ZONE,
            ("/digest", "comes at 08:00 (Europe/Moscow)", "приходит в 08:00 (Europe/Moscow)"),
            ("/digest 25:00", "is not a time of day", "не время суток"),
            ("/digest 8:30", "comes at 08:30 (Europe/Moscow)", "в 08:30 (Europe/Moscow)"),
            ("/digest off", "The daily digest is off", "сводка выключена"),
            ("/digest", "is off. Turn it on", "выключена. Включить"),
            ("/digest on", "comes at 08:30", "в 08:30"),
        ],
        {"digest_time": "08:30", "digest_enabled": True},
    ),
    "mute": (
        [
            ("/mute", "Alerts are on", "Оповещения включены"),
            ("/mute 2x", "as a duration", "как срок"),
            ("/mute 31d", "at most 30 days", "не больше 30 дней"),
            ("/mute 2h", "Alerts are muted until", "без звука до"),
            ("/mute", "muted until", "без звука до"),
            ("/mute off", "Alerts are on again", "снова включены"),
        ],
        {"muted_until": None},
    ),
    "quiet": (
        [
            MOSCOW_ZONE,
            ("/quiet", "No quiet hours", "Тихих часов нет"),
            ("/quiet 8-9", "as quiet hours", "как тихие часы"),
            ("/quiet 10:00-10:00", "different times", "должны различаться"),
            (
                "/quiet 23:00-08:00",
                "Quiet hours: 23:00–08:00 every day",
                "Тихие часы: 23:00–08:00",
            ),
            ("/quiet", "Quiet hours: 23:00–08:00 (Europe/Moscow)", "Тихие часы: 23:00–08:00"),
            ("/quiet off", "No quiet hours any more", "Тихих часов больше нет"),
            ("/quiet 22:30 - 6:45", "Quiet hours: 22:30–06:45", "Тихие часы: 22:30–06:45"),
        ],
        {"quiet_start": "22:30", "quiet_end": "06:45"},
    ),
    "previews": (
        [
            ("/previews", "show no link previews", "нет превью"),
            ("/previews maybe", "neither on nor off", "ни «on», ни «off»"),
            ("/previews off", "no longer show", "больше не показываются"),
            ("/previews on", "now show a preview", "есть превью"),
            ("/previews", "show a preview of the post's link", "показывается превью"),
        ],
        {"link_previews": True},
    ),
}


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("topic", list(CONVERSATIONS))
async def test_every_command_valid_and_invalid(
    storage: Storage, chat: Chat, api: FakeBotAPI, topic: str, language: str
) -> None:
    commands, settings = CONVERSATIONS[topic]
    for command, english, russian in commands:
        reply = await _say(api, command, language)
        expected = english if language == "en" else russian
        assert expected in reply, f"{command}: {reply}"
        if language == "ru":
            assert not english_left(reply), f"{command}: {reply}"
    subscriber = await storage.get_subscriber(USER)
    assert subscriber is not None  # registered on first use
    for name, value in settings.items():
        assert getattr(subscriber, name) == value, name


async def test_mute_says_until_when_in_the_chats_zone(
    storage: Storage, chat: Chat, api: FakeBotAPI
) -> None:
    await _say(api, "/timezone Europe/Moscow", "ru")
    before = datetime.now(UTC)
    reply = await _say(api, "/mute 1h30m", "ru")
    after = datetime.now(UTC)
    t = CATALOG.texts("ru")
    shown = {moment_text(t, moment + timedelta(minutes=90), MOSCOW) for moment in (before, after)}
    assert any(f"без звука до {text}." in reply for text in shown), reply
    assert " MSK" in reply
    subscriber = await storage.get_subscriber(USER)
    assert subscriber is not None
    assert subscriber.muted_until is not None
    assert (
        before + timedelta(minutes=90) <= subscriber.muted_until <= after + timedelta(minutes=90)
    )


async def test_lang_switches_the_chats_language_whatever_telegram_says(
    storage: Storage, chat: Chat, api: FakeBotAPI
) -> None:
    assert "Теперь я пишу здесь по-русски" in await _say(api, "/lang ru", "en")
    # The person's Telegram is in English, but the chat chose Russian.
    assert "Тихих часов нет" in await _say(api, "/quiet", "en")
    assert "From now on I write here in English" in await _say(api, "/lang english", "ru")
    assert "No quiet hours" in await _say(api, "/quiet", "ru")


# --- the settings message and its buttons ----------------------------------------------------


async def _settings(
    api: FakeBotAPI,
    language: str,
    chat_id: int = USER,
    *,
    user_id: int = USER,
    chat_type: str = "private",
) -> int:
    """Send /settings; the id of the bot's answer."""
    before = len(api.sent_to(chat_id))
    api.push_message(
        chat_id, "/settings", language_code=language, user_id=user_id, chat_type=chat_type
    )
    sent = await api.wait_for_sent(before + 1, chat_id=chat_id)
    return sent[-1].message_id


def _shown(api: FakeBotAPI, message_id: int, chat_id: int = USER) -> str:
    current = api.current(chat_id, message_id)
    assert current is not None
    return current.visible_text


def _ticked(api: FakeBotAPI, message_id: int, chat_id: int = USER) -> list[str]:
    return [
        text
        for row in buttons(api.current(chat_id, message_id))
        for text, _ in row
        if text.startswith("✓")
    ]


async def _press(
    api: FakeBotAPI, message_id: int, data: str, language: str = "en", *, check: bool = True
) -> CallbackAnswer:
    return await api.press(USER, message_id, data, language_code=language, check_button=check)


async def test_settings_show_every_value_with_buttons_in_english(
    chat: Chat, api: FakeBotAPI
) -> None:
    message_id = await _settings(api, "en")
    text = _shown(api, message_id)
    for line in (
        "Settings of this chat",
        "🌐 Language: English",
        "🕓 Time zone: UTC (now ",
        "📰 Daily digest: at 08:00",
        "🔔 Alerts: on",
        "🌙 Quiet hours: none",
        "🔗 Link previews in alerts: off",
        "/timezone Area/City",
    ):
        assert line in text
    labels = [label for row in buttons(api.current(USER, message_id)) for label, _ in row]
    for label in ("Русский", "Moscow", "Kyiv", "Minsk", "London", "Berlin", "New York"):
        assert any(label in shown for shown in labels), label
    assert _ticked(api, message_id) == ["✓ English", "✓ UTC", "✓ 📰 08:00", "✓ 🔗 Previews off"]


async def test_each_button_changes_its_setting_in_place(
    storage: Storage, chat: Chat, api: FakeBotAPI
) -> None:
    message_id = await _settings(api, "ru")
    assert "Настройки этого чата" in _shown(api, message_id)
    assert not english_left(api.current(USER, message_id).text)  # type: ignore[union-attr]
    sent = len(api.sent_to(USER))

    answer = await _press(api, message_id, _button(Setting.ZONE, "Europe/Moscow"), "ru")
    assert answer.text == "✅ Сохранено"
    assert "Часовой пояс: Europe/Moscow (сейчас " in _shown(api, message_id)
    assert " MSK)" in _shown(api, message_id)

    await _press(api, message_id, _button(Setting.DIGEST, "0900"), "ru")
    assert "📰 Ежедневная сводка: в 09:00" in _shown(api, message_id)
    await _press(api, message_id, _button(Setting.DIGEST, "off"), "ru")
    assert "📰 Ежедневная сводка: выключена" in _shown(api, message_id)

    await _press(api, message_id, _button(Setting.MUTE, "480"), "ru")
    assert "🔕 Оповещения: без звука до " in _shown(api, message_id)
    labels = [label for row in buttons(api.current(USER, message_id)) for label, _ in row]
    assert "🔔 Включить звук" in labels
    await _press(api, message_id, _button(Setting.MUTE, "off"), "ru")
    assert "🔔 Оповещения: включены" in _shown(api, message_id)

    await _press(api, message_id, _button(Setting.PREVIEWS, "on"), "ru")
    assert "Превью ссылок в оповещениях: включены" in _shown(api, message_id)
    assert _ticked(api, message_id) == ["✓ Русский", "✓ Москва", "✓ 📰 Выкл.", "✓ 🔗 Превью вкл."]

    answer = await _press(api, message_id, _button(Setting.LANGUAGE, "en"), "ru")
    assert answer.text == "✅ Saved"  # in the language just chosen
    assert "🌐 Language: English" in _shown(api, message_id)

    subscriber = await storage.get_subscriber(USER)
    assert subscriber is not None
    assert subscriber.language == "en"
    assert subscriber.timezone == "Europe/Moscow"
    assert subscriber.digest_time == "09:00"
    assert not subscriber.digest_enabled
    assert subscriber.muted_until is None
    assert subscriber.link_previews
    assert len(api.sent_to(USER)) == sent  # every press edited the one message
    assert len(api.callback_answers) == 7  # and each was answered


async def test_the_same_press_twice_is_no_error(chat: Chat, api: FakeBotAPI) -> None:
    message_id = await _settings(api, "en")
    sent = len(api.sent_to(USER))
    data = _button(Setting.PREVIEWS, "off")  # already the value: the text stays the same
    first = await _press(api, message_id, data)
    second = await _press(api, message_id, data)
    assert first.text == second.text == "✅ Saved"
    assert any("message is not modified" in r.description for r in api.rejected)
    assert len(api.sent_to(USER)) == sent  # no "something went wrong"


@pytest.mark.parametrize(
    "data",
    [
        "cfg:tz:Mars/Phobos",  # a zone no button offers
        "cfg:mute:5",  # a duration no button offers
        "cfg:dg:2500",
        "cfg:lang:de",
        "cfg:pv:maybe",
    ],
)
async def test_a_forged_press_gets_a_toast_and_changes_nothing(
    storage: Storage, chat: Chat, api: FakeBotAPI, data: str
) -> None:
    message_id = await _settings(api, "ru")
    before = await storage.get_subscriber(USER)
    answer = await _press(api, message_id, data, "ru", check=False)
    assert answer.text == "Эта кнопка устарела; сейчас показаны действующие настройки."
    assert await storage.get_subscriber(USER) == before


@pytest.mark.parametrize("data", ["cfg:zz:1", "cfg:tz", "cfg:", "cfg:mute:1:2:3"])
async def test_malformed_settings_data_gets_a_toast(
    chat: Chat, api: FakeBotAPI, data: str
) -> None:
    message_id = await _settings(api, "en")
    sent = len(api.sent_to(USER))
    answer = await _press(api, message_id, data, check=False)
    assert answer.text == "This button is out of date; the settings shown now are current."
    assert len(api.sent_to(USER)) == sent


async def test_a_press_on_an_old_keyboard_sets_what_it_says(
    storage: Storage, chat: Chat, api: FakeBotAPI
) -> None:
    # Two settings messages: a press on the older one still sets the value its button
    # names, and redraws that message as the settings are now.
    old = await _settings(api, "en")
    new = await _settings(api, "en")
    await _press(api, new, _button(Setting.ZONE, "Europe/Kyiv"))
    await _press(api, old, _button(Setting.DIGEST, "0700"))
    text = _shown(api, old)
    assert "Time zone: Europe/Kyiv" in text
    assert "Daily digest: at 07:00" in text


async def test_in_a_group_only_administrators_change_settings(
    storage: Storage, matcher: Matcher, api: FakeBotAPI, bot: Bot
) -> None:
    # The group gate (handlers/groups.py) refuses members; administrators, anonymous ones
    # too, change the group's settings with commands and buttons.
    api.add_chat(GROUP, "supergroup", title="Arms control desk")
    api.set_member(GROUP, ADMIN, "administrator")
    api.set_member(GROUP, MEMBER, "member")
    group = "supergroup"
    async with polling(storage, matcher, bot):
        refused = await api.say(GROUP, "/mute 2h", user_id=MEMBER, chat_type=group)
        assert "administrators" in refused
        refused = await api.say(
            GROUP, "/timezone Europe/Moscow", user_id=MEMBER, language_code="ru", chat_type=group
        )
        assert "администратор" in refused
        subscriber = await storage.get_subscriber(GROUP)
        assert subscriber is None or (subscriber.muted_until, subscriber.timezone) == (None, None)

        message_id = await _settings(api, "en", GROUP, user_id=ADMIN, chat_type=group)
        text = _shown(api, message_id, GROUP)
        assert "Only the group's administrators can change these." in text
        data = _button(Setting.ZONE, "Europe/Moscow")
        answer = await api.press(GROUP, message_id, data, user_id=MEMBER)
        assert answer.text is not None
        assert "administrators" in answer.text
        subscriber = await storage.get_subscriber(GROUP)
        assert subscriber is not None
        assert subscriber.timezone is None

        answer = await api.press(GROUP, message_id, data, user_id=ADMIN)
        assert answer.text == "✅ Saved"
        assert "Time zone: Europe/Moscow" in _shown(api, message_id, GROUP)
        answer = await api.press(
            GROUP, message_id, _button(Setting.DIGEST, "0700"), user_id=GROUP_ANONYMOUS_BOT_ID
        )
        assert answer.text == "✅ Saved"
        reply = await api.say(GROUP, "/quiet 22:00-07:00", user_id=ADMIN, chat_type=group)
        assert "Quiet hours: 22:00–07:00" in reply
        reply = await api.say(GROUP, "/previews on", sender_chat=api.chat(GROUP), chat_type=group)
        assert "now show a preview" in reply  # an anonymous administrator
    subscriber = await storage.get_subscriber(GROUP)
    assert subscriber is not None
    assert subscriber.kind == "supergroup"
    assert subscriber.timezone == "Europe/Moscow"
    assert subscriber.digest_time == "07:00"
    assert (subscriber.quiet_start, subscriber.quiet_end) == ("22:00", "07:00")
    assert subscriber.link_previews


# --- alerts held by a mute or quiet hours, then delivered ----------------------------------------


class Clock:
    """The worker's idea of now, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _worker(storage: Storage, bot: Bot, clock: Clock | None = None) -> OutboxWorker:
    """A worker on `clock`, or on the real one (as the handlers are)."""
    sender = TelegramSender(bot, Pacer(rate=1000, private_interval=0.0, group_interval=0.0))
    ready = asyncio.Event()
    if clock is None:
        return OutboxWorker(storage, sender, UTC, ready, catalog=CATALOG)
    return OutboxWorker(storage, sender, UTC, ready, catalog=CATALOG, clock=clock)


async def _alert(storage: Storage, chat_id: int, number: int, text: str = "Oreshnik") -> None:
    """A post matched by the chat's `Oreshnik` query (subscribing the chat if needed)."""
    await storage.upsert_subscriber(chat_id, f"chat {chat_id}")
    subscriptions = await storage.subscriptions_of(chat_id)
    if not subscriptions:
        await storage.add_subscription(chat_id, "Oreshnik")
        subscriptions = await storage.subscriptions_of(chat_id)
    spans = (Span(text.find("Oreshnik"), text.find("Oreshnik") + 8),)
    post = Post(
        "tgweb",
        "milinfolive",
        f"{chat_id}-{number}",
        datetime(2026, 11, 20, 21, 5, tzinfo=UTC),
        text,
        f"https://t.me/milinfolive/{number}",
        channel_title="Военная хроника",
    )
    await storage.save_post(post, [MatchRecord(subscriptions[0].id, chat_id, "Oreshnik", spans)])


async def test_quiet_hours_hold_alerts_and_deliver_them_once_together_in_russian(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    # A Russian reader in Moscow, quiet from 23:00 to 08:00; the worker's clock is at
    # 23:30 there (later than now, so alerts queued now are due to it).
    reader, other = 7, 8
    await storage.upsert_subscriber(reader, "reader")
    await storage.update_subscriber(
        reader, language="ru", timezone="Europe/Moscow", quiet_start="23:00", quiet_end="08:00"
    )
    night = next_wall_time(datetime.now(UTC) + timedelta(minutes=1), time(23, 30), MOSCOW)
    morning = next_wall_time(night, time(8, 0), MOSCOW)
    clock = Clock(night)
    worker = _worker(storage, bot, clock)

    await _alert(storage, reader, 1, "Запуск Oreshnik")
    await _alert(storage, other, 1)
    await _alert(storage, reader, 2, "Oreshnik снова")
    assert await worker.send_due() == 1  # the other chat is not held up
    assert api.sent_to(reader) == []
    assert len(api.sent_to(other)) == 1
    # Held whole until the morning, no attempt counted, and the worker has nothing to do
    # before then (it does not poll a held chat).
    assert await storage.next_attempt_at() == morning
    held = await storage.pending_messages(morning)
    assert [(row.chat_id, row.attempts) for row in held] == [(reader, 0), (reader, 0)]

    clock.now = night + timedelta(minutes=30)
    await _alert(storage, reader, 3, "Oreshnik в третий раз")  # arrives during the quiet
    assert await worker.send_due() == 0
    assert await storage.next_attempt_at() == morning
    clock.now = morning - timedelta(seconds=1)
    assert await worker.send_due() == 0

    clock.now = morning
    assert await worker.send_due() == 3
    (message,) = api.sent_to(reader)
    assert message.visible_text.startswith("🔔 3 новых совпадения\n")
    assert "Военная хроника · 21 нояб. 00:05 MSK" in message.visible_text
    assert message.visible_text.count("Открыть исходный пост") == 3
    assert "tgweb" not in message.visible_text
    assert not english_left(message.text.replace("Oreshnik", ""))
    assert await worker.send_due() == 0  # nothing twice
    assert await storage.outbox_counts() == {"pending": 0, "sent": 4, "failed": 0}


async def test_a_mute_holds_alerts_and_they_come_batched_after_it(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    start = datetime.now(UTC) + timedelta(minutes=5)
    clock = Clock(start)
    await storage.upsert_subscriber(9, "muted")
    await storage.update_subscriber(9, muted_until=start + timedelta(hours=1))
    worker = _worker(storage, bot, clock)
    for number in (1, 2):
        await _alert(storage, 9, number)
        assert await worker.send_due() == 0
    assert await storage.next_attempt_at() == start + timedelta(hours=1)
    clock.now = start + timedelta(hours=1)
    assert await worker.send_due() == 2
    (message,) = api.sent_to(9)
    assert message.visible_text.startswith("🔔 2 new matches\n")
    assert "Военная хроника · 20 Nov 21:05 UTC" in message.visible_text


async def test_unmuting_releases_held_alerts_at_once(
    storage: Storage, chat: Chat, api: FakeBotAPI, bot: Bot
) -> None:
    await _say(api, "/mute 8h", "en")
    worker = _worker(storage, bot)  # on the real clock, like the handlers
    await _alert(storage, USER, 1)
    assert await worker.send_due() == 0
    assert (await storage.next_attempt_at() or datetime.now(UTC)) > datetime.now(UTC) + timedelta(
        hours=7
    )
    await _say(api, "/mute off", "en")
    assert await worker.send_due() == 1
    assert "Oreshnik" in api.sent_to(USER)[-1].visible_text


async def test_a_digest_is_not_held_by_quiet_hours(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    night = next_wall_time(datetime.now(UTC) + timedelta(minutes=1), time(23, 30), ZoneInfo("UTC"))
    await storage.upsert_subscriber(7, "reader")
    await storage.update_subscriber(7, quiet_start="23:00", quiet_end="08:00")
    await _alert(storage, 7, 1)
    await storage.queue_digest(7, ["<b>Digest</b> of the day"], night)
    worker = _worker(storage, bot, Clock(night))
    assert await worker.send_due() == 1
    (message,) = api.sent_to(7)
    assert message.text == "<b>Digest</b> of the day"
    assert len(await storage.pending_messages(night + timedelta(days=1))) == 1  # the alert waits


# --- link previews ------------------------------------------------------------------------------


def _preview_disabled(params: dict[str, str]) -> bool:
    options = json.loads(params.get("link_preview_options") or "{}")
    return bool(options.get("is_disabled", False))


async def test_link_previews_follow_the_chats_choice(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    await storage.upsert_subscriber(7, "wants previews")
    await storage.update_subscriber(7, link_previews=True)
    await _alert(storage, 7, 1)
    await _alert(storage, 8, 1)
    worker = _worker(storage, bot)
    assert await worker.send_due() == 2
    (wanted,) = api.sent_to(7)
    (plain,) = api.sent_to(8)
    assert not _preview_disabled(wanted.params)
    assert _preview_disabled(plain.params)
    await storage.queue_digest(
        7, ['<b>Digest</b> <a href="https://t.me/x/1">one</a>'], datetime.now(UTC)
    )
    assert await worker.send_due() == 1
    assert _preview_disabled(api.sent_to(7)[-1].params)  # a digest's many links: never


# --- the digest per chat ----------------------------------------------------------------------


@pytest.fixture
async def russian_chat(
    storage: Storage, matcher: Matcher, api: FakeBotAPI, bot: Bot
) -> AsyncIterator[Chat]:
    async with polling(storage, matcher, bot, Settings(_env_file=None, timezone="Europe/Moscow")):  # type: ignore[call-arg]
        yield Chat(api)


async def test_digest_time_and_off_set_by_command_are_kept_by_the_digest_job(
    storage: Storage, russian_chat: Chat, api: FakeBotAPI
) -> None:
    # The service runs on Moscow time with digests at 08:00; the reader moves theirs to 06:15.
    assert "в 06:15 (Europe/Moscow)" in await _say(api, "/digest 06:15", "ru")
    await _alert(storage, USER, 1)
    slot = next_wall_time(datetime.now(UTC), time(6, 15), MOSCOW)
    eight = time(8, 0)
    assert await queue_digests(storage, slot - timedelta(seconds=1), eight, MOSCOW) == 0
    assert await queue_digests(storage, slot, eight, MOSCOW, catalog=CATALOG) == 1
    digest, chart = [m for m in await storage.pending_messages(slot) if m.kind == "digest"]
    assert (digest.text or "").startswith("<b>📰 Сводка за ")
    assert "1 найденный пост" in (digest.text or "")
    assert chart.media == "chart"

    await _say(api, "/digest off", "ru")
    await _alert(storage, USER, 2)
    tomorrow = slot + timedelta(days=1)
    assert await queue_digests(storage, tomorrow, eight, MOSCOW, catalog=CATALOG) == 0
    digests = [m for m in await storage.pending_messages(tomorrow) if m.kind == "digest"]
    assert digests == [digest, chart]  # only yesterday's
    subscriber = await storage.get_subscriber(USER)
    assert subscriber is not None
    assert subscriber.last_digest_at == tomorrow


async def test_the_digest_chart_and_quiet_days_are_set_by_command_in_either_language(
    storage: Storage, russian_chat: Chat, api: FakeBotAPI
) -> None:
    usage = await _say(api, "/digest chart", "en")
    assert "chart comes with the digest: on" in usage
    assert "without the chart" in await _say(api, "/digest chart off", "en")
    assert (
        "в тихие дни сводка приходить не будет"
        in (await _say(api, "/digest тихие нет", "ru")).lower()
    )
    assert "короткое сообщение" in await _say(api, "/digest quiet on", "ru")
    subscriber = await storage.get_subscriber(USER)
    assert subscriber is not None
    assert (subscriber.digest_chart, subscriber.digest_quiet_days) == (False, True)
    shown = await _say(api, "/settings", "en")
    assert "Chart with the digest: off · on quiet days: a short note" in shown
    # A word that is not on/off: the usage, with the setting as it is; nothing changes.
    assert "no digest is sent" not in await _say(api, "/digest quiet maybe", "en")
    assert "you get a short note" in await _say(api, "/digest quiet maybe", "en")
    again = await storage.get_subscriber(USER)
    assert again is not None
    assert again.digest_quiet_days


async def test_a_quiet_day_brings_a_short_note_only_to_chats_that_asked(
    storage: Storage, russian_chat: Chat, api: FakeBotAPI
) -> None:
    await _say(api, "/digest quiet on", "ru")
    await storage.upsert_subscriber(USER + 1, "other")  # did not ask
    now = datetime.now(UTC)
    assert await queue_digests(storage, now, time(8, 0), MOSCOW, force=True, catalog=CATALOG) == 1
    later = datetime.now(UTC)
    (quiet,) = [m for m in await storage.pending_messages(later) if m.kind == "digest"]
    assert quiet.chat_id == USER
    assert "по вашим запросам ничего не нашлось" in (quiet.text or "")
