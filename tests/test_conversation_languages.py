"""Every command and every button, walked in Russian and in English: nothing fails, and the
Russian conversation holds no English prose (a message missing from the Russian catalogue
would fall back to English, which this walk catches)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from aiogram import Bot

from bot.app import build_dispatcher
from bot.config import Settings
from bot.domain import Post
from bot.i18n import Catalog
from bot.ingest import Matcher
from bot.storage import Storage
from handlers.menu import MENU, set_command_menus
from handlers.throttle import InputThrottle
from tests.botapi import FakeBotAPI, buttons
from tests.conftest import USER, dispatching

# What a user of each command might type, right and wrong; a plain text and a typo too.
SAID = [
    "/start",
    "/help",
    "/subscribe",
    "/subscribe (Орешник",
    "/subscribe Орешник",
    "/subscribe Орешник",
    "/subscribe Кинжал OR Циркон",
    "/list",
    "/unsubscribe",
    "/unsubscribe 99",
    "/unsubscribe Кинжалл",
    "/search",
    '/search "Орешник',
    "/search Орешник",
    "/search Буревестник",
    "/sources",
    "/addsource",
    "/addsource https://t.me/militaryrussiaru",
    "/removesource @nosuchchannel",
    "/settings",
    "/lang",
    "/timezone",
    "/timezone Mars/Olympus",
    "/timezone Europe/Moscow",
    "/digest",
    "/digest 25:00",
    "/digest 08:30",
    "/digest off",
    "/mute",
    "/mute 2h",
    "/mute off",
    "/quiet",
    "/quiet 23:00-08:00",
    "/quiet off",
    "/previews",
    "/previews on",
    "/presets",
    "/stats",
    "/export",
    "/export 0",
    "/export json",
    "/subscrbe Орешник",
    "Орешник над Днепром",
]
MAX_PRESSES = 120
# Latin words a Russian text may hold: names and codes of the domain, used as examples.
NAMES = {"Telegram", "Inf", "Oreshnik", "Kalibr", "Kinzhal", "Iskander", "Sarmat", "Patriot"}
_CODE = re.compile(r"<code>.*?</code>|<pre>.*?</pre>", re.S)
_TAG = re.compile(r"<[^>]+>")
# Links, mentions, commands and zone names (Europe/Moscow).
_NOT_PROSE = re.compile(r"https?://\S+|\bt\.me/\S+|@\w+|/\w+(?:@\w+)?|\b[A-Z][a-z]+/[\w/+-]+")
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'’]{2,}")


def english_words(text: str) -> list[str]:
    """Latin words in a reply that are prose, not code, links, commands, names or acronyms."""
    visible = html.unescape(_TAG.sub(" ", _CODE.sub(" ", text)))
    visible = _NOT_PROSE.sub(" ", visible)
    return [
        word
        for word in _LATIN_WORD.findall(visible)
        if word not in NAMES and not word.isupper() and not word[:2].isupper()
    ]


async def _walk(api: FakeBotAPI, language: str) -> list[str]:
    """Say everything, press every button once (breadth first); every text the bot showed."""
    for text in SAID:
        await api.say(USER, text, user_id=USER, language_code=language)
    pressed: set[tuple[int, str]] = set()
    presses = 0
    progress = True
    while progress and presses < MAX_PRESSES:
        progress = False
        for message in list(api.sent_to(USER)):
            current = api.current(USER, message.message_id)
            for row in buttons(current):
                for _label, data in row:
                    key = (message.message_id, data)
                    if key in pressed or data.startswith(("http://", "https://", "cfg:lang:")):
                        continue  # a link, or the button that would change the language
                    pressed.add(key)
                    current = api.current(USER, message.message_id)
                    if current is None or all(
                        data not in [d for _, d in r] for r in buttons(current)
                    ):
                        continue  # the button went away with an earlier press
                    await api.press(
                        USER, message.message_id, data, user_id=USER, language_code=language
                    )
                    presses += 1
                    progress = True
    assert presses >= 30, f"only {presses} buttons pressed: the walk lost its way"
    await api.say(USER, "/help", user_id=USER, language_code=language)  # the walk is done
    shown = [m.text for m in api.sent_to(USER)]
    shown += [e.text for e in api.edits if e.chat_id == USER and e.text]
    shown += [a.text for a in api.callback_answers if a.text]
    return shown


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_every_command_and_button_in_both_languages(
    language: str, storage: Storage, matcher: Matcher, api: FakeBotAPI, bot: Bot
) -> None:
    now = datetime.now(UTC)
    for n in range(7):
        post = Post(
            "tgweb",
            "milinfolive",
            str(n),
            now - timedelta(hours=n),
            f"Пуск «Орешника» номер {n} с полигона Капустин Яр",
            f"https://t.me/milinfolive/{n}",
            channel_title="Военная хроника",
        )
        await storage.save_post(post, [])
    settings = Settings(_env_file=None, admin_ids=[USER])  # type: ignore[call-arg]
    # One person walking everything is faster than a person types: no input bounds here.
    # (Its replies are paced at one a second per chat, so its presses' handlers pile up.)
    patient = InputThrottle(max_in_progress=10_000, burst=10_000, per_minute=1_000_000)
    dispatcher = build_dispatcher(storage, matcher, settings, throttle=patient)
    async with dispatching(dispatcher, bot):
        shown = await _walk(api, language)
    failed = Catalog().texts(language)("handler-failed", update="")
    assert not [text for text in shown if failed.split("(")[0] in text]
    if language == "ru":
        leaks = {text: words for text in shown if (words := english_words(text))}
        assert not leaks, "English left in the Russian conversation:\n" + "\n".join(
            f"  {words[:8]}: {text[:300]!r}" for text, words in leaks.items()
        )


async def test_the_command_menu_is_set_in_each_language(api: FakeBotAPI, bot: Bot) -> None:
    await set_command_menus(bot, Catalog(strict=True))
    english = api.commands(language_code="")
    russian = api.commands(language_code="ru")
    assert [c["command"] for c in english] == list(MENU)
    assert [c["command"] for c in russian] == list(MENU)
    assert api.commands(language_code="uk") == russian  # Ukrainian readers get Russian
    assert all(not english_words(c["description"]) for c in russian)
    assert english != russian
