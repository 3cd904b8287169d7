"""Helpful instead of silent: plain text offers to subscribe or search, a forwarded channel
post offers to watch the channel (administrators) or to search for similar posts, unknown
commands get the closest known one, an outdated button a toast."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram import Bot

from bot.config import Settings
from bot.domain import Post
from bot.i18n import Catalog
from bot.ingest import Matcher
from bot.storage import Storage
from handlers.fallback import Offer, OfferAction, similar_query
from tests.botapi import FakeBotAPI, SentMessage, buttons
from tests.test_groups import BOT, GROUP, in_order

TEXTS = Catalog(strict=True)
USER = 501
ADMIN = 700
SUBSCRIBE = Offer(action=OfferAction.SUBSCRIBE).pack()
SEARCH = Offer(action=OfferAction.SEARCH).pack()
SIMILAR = Offer(action=OfferAction.SIMILAR).pack()
CHANNEL = -1001234567890


def watch(username: str) -> str:
    return Offer(action=OfferAction.WATCH, channel=username).pack()


def data_of(message: SentMessage) -> list[str]:
    return [data for row in buttons(message) for _, data in row]


def channel_origin(api: FakeBotAPI, username: str | None = "militaryrussiaru") -> dict[str, Any]:
    chat = api.add_chat(CHANNEL, "channel", title="Military Russia", username=username)
    return {"type": "channel", "chat": chat, "message_id": 36594, "date": 1_700_000_000}


async def store(storage: Storage, text: str, post_id: str = "1") -> None:
    post = Post("tgweb", "militaryrussiaru", post_id, datetime.now(UTC), text)
    await storage.save_post(post, [])


# --- plain text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "offer", "subscribed"),
    [("en", "Shall I watch for", "Subscribed"), ("ru", "Следить за", "Подписка")],
)
async def test_plain_text_is_offered_as_a_subscription_or_a_search(
    api: FakeBotAPI,
    bot: Bot,
    storage: Storage,
    matcher: Matcher,
    language: str,
    offer: str,
    subscribed: str,
) -> None:
    await store(storage, "Пуск «Орешника» с полигона Капустин Яр")
    async with in_order(storage, matcher, bot):
        reply = await api.say(USER, "Орешник   Капустин", language_code=language)
        assert offer in reply
        assert "<code>Орешник Капустин</code>" in reply  # as a query: spaces folded
        shown = api.sent_to(USER)[-1]
        assert data_of(shown) == [SUBSCRIBE, SEARCH]
        assert "Орешник Капустин" in buttons(shown)[0][0][0]

        answer = await api.press(USER, shown.message_id, SUBSCRIBE, language_code=language)
        assert answer.text is None  # the answer is a message: what /subscribe says
        (_, confirmation) = await api.wait_for_sent(2, chat_id=USER)
        assert subscribed in confirmation.text
        assert [s.query for s in await storage.subscriptions_of(USER)] == ["Орешник Капустин"]
        assert await matcher.find("Орешник снова на Капустином Яре")

        await api.press(USER, shown.message_id, SEARCH, language_code=language)
        found = (await api.wait_for_sent(3, chat_id=USER))[-1]
        assert "Капустин" in found.visible_text  # what /search answers for that query


async def test_text_naming_a_channel_is_offered_as_a_search_only(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    # `/subscribe @name …` configures a channel: re-sending the text that way would misread it.
    async with in_order(storage, matcher, bot):
        await api.say(USER, "@durov Орешник")
        assert data_of(api.sent_to(USER)[-1]) == [SEARCH]


async def test_text_that_is_no_query_gets_the_reason(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    async with in_order(storage, matcher, bot):
        reply = await api.say(USER, '"Oreshnik in Belarus')
        assert "can't use that as a query" in reply
        assert "never closed" in reply
        assert api.sent_to(USER)[-1].reply_markup is None
        reply = await api.say(USER, "Орешник OR", language_code="ru")
        assert "не получится сделать запросом" in reply


async def test_an_offer_still_works_after_a_restart(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    """The query lives in the offer itself, not in the process."""
    async with in_order(storage, matcher, bot):
        await api.say(USER, "Буревестник")
        shown = api.sent_to(USER)[-1]
    async with in_order(storage, matcher, bot):
        await api.press(USER, shown.message_id, SUBSCRIBE)
        await api.wait_for_sent(2, chat_id=USER)
    assert [s.query for s in await storage.subscriptions_of(USER)] == ["Буревестник"]


# --- forwarded channel posts ----------------------------------------------------------

POST = "Минобороны сообщило о пуске ракеты «Орешник» по Днепру; комплекс 9М729 развёрнут."


async def test_an_administrator_is_offered_to_watch_a_forwarded_posts_channel(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    settings = Settings(_env_file=None, admin_ids=[ADMIN])  # type: ignore[call-arg]
    async with in_order(storage, matcher, bot, settings):
        reply = await api.say(ADMIN, POST, forward_origin=channel_origin(api))
        assert "Military Russia" in reply
        shown = api.sent_to(ADMIN)[-1]
        assert data_of(shown) == [watch("militaryrussiaru"), SIMILAR]

        await api.press(ADMIN, shown.message_id, watch("militaryrussiaru"))
        added = (await api.wait_for_sent(2, chat_id=ADMIN))[-1]
        assert "@militaryrussiaru" in added.text
        assert "telegram:@militaryrussiaru" in [s.spec for s in await storage.list_sources()]


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_everyone_is_offered_posts_like_a_forwarded_one(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher, language: str
) -> None:
    await store(storage, "Ракета «Орешник» и 9М729: что известно о Днепре")
    async with in_order(storage, matcher, bot):
        reply = await api.say(
            USER, POST, forward_origin=channel_origin(api), language_code=language
        )
        query = similar_query(POST)
        assert query is not None
        assert f"<code>{query}</code>" in reply
        shown = api.sent_to(USER)[-1]
        assert data_of(shown) == [SIMILAR]  # no source to watch for a non-administrator

        await api.press(USER, shown.message_id, SIMILAR, language_code=language)
        found = (await api.wait_for_sent(2, chat_id=USER))[-1]
        assert "Днепре" in found.visible_text
        assert await storage.list_sources() == []

        # A forged "watch" press from someone who is not an administrator adds nothing.
        await api.press(USER, shown.message_id, watch("evilchannel"), check_button=False)
        refusal = (await api.wait_for_sent(3, chat_id=USER))[-1]
        assert refusal.text != found.text
        assert await storage.list_sources() == []


async def test_a_private_channel_cannot_be_watched_and_says_so(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    settings = Settings(_env_file=None, admin_ids=[ADMIN])  # type: ignore[call-arg]
    async with in_order(storage, matcher, bot, settings):
        reply = await api.say(ADMIN, POST, forward_origin=channel_origin(api, username=None))
        assert "no public username" in reply
        assert data_of(api.sent_to(ADMIN)[-1]) == [SIMILAR]


def test_a_similar_query_takes_a_posts_most_telling_words() -> None:
    # Designations and names first, in the order of the post; common words never.
    assert similar_query(POST) == "Орешник Днепру 9М729"
    english = "Russia tested the Burevestnik near Novaya Zemlya, the Pentagon says."
    query = similar_query(english)
    assert query is not None
    assert "Burevestnik" in query.split()
    assert "Russia" not in query.split()
    assert similar_query("и в на, а но") is None
    assert similar_query("https://t.me/x @someone #tag 2024") is None


# --- unknown commands -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "language", "expected"),
    [
        (
            "/subscrbe Oreshnik",
            "en",
            "I don't know <code>/subscrbe</code> — did you mean /subscribe?",
        ),
        ("/lst", "en", "did you mean /list?"),
        ("/presest", "en", "did you mean /presets?"),
        ("/subscrbe", "ru", "Я не знаю команды <code>/subscrbe</code> — может быть, /subscribe?"),
        ("/frobnicate now", "en", "I don't know the command <code>/frobnicate</code>"),
    ],
)
async def test_an_unknown_command_gets_the_closest_known_one(
    api: FakeBotAPI,
    bot: Bot,
    storage: Storage,
    matcher: Matcher,
    typed: str,
    language: str,
    expected: str,
) -> None:
    async with in_order(storage, matcher, bot):
        assert expected in await api.say(USER, typed, language_code=language)


async def test_administrators_commands_are_suggested_only_to_administrators(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    settings = Settings(_env_file=None, admin_ids=[ADMIN])  # type: ignore[call-arg]
    async with in_order(storage, matcher, bot, settings):
        assert "did you mean /stats?" in await api.say(ADMIN, "/stat")
        assert "/stats" not in await api.say(USER, "/stat")


async def test_in_a_group_only_commands_addressed_to_this_bot_are_answered(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    async with in_order(storage, matcher, bot):
        for text in ("/subscrbe Oreshnik", "/subscrbe@other_bot Oreshnik", "/ping", "hello all"):
            api.push_message(GROUP, text, chat_type="supergroup")
        reply = await api.say(GROUP, f"/subscrbe{BOT} Oreshnik", chat_type="supergroup")
        assert reply == TEXTS.texts("en")(
            "unknown-command-suggest",
            command="<code>/subscrbe</code>",
            suggestion=f"/subscribe{BOT}",
        )
        assert len(api.sent_to(GROUP)) == 1  # the earlier ones were left alone


# --- outdated buttons -----------------------------------------------------------------


@pytest.mark.parametrize("data", ["ql:zz", "nonsense", "of:s", "of:w:x"])
async def test_an_outdated_or_forged_button_gets_a_toast(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher, data: str
) -> None:
    async with in_order(storage, matcher, bot):
        await api.say(USER, "Oreshnik")
        shown = api.sent_to(USER)[-1]
        answer = await api.press(USER, shown.message_id, data, check_button=False)
        assert answer.text
        assert len(api.sent_to(USER)) == 1
        assert await storage.subscriptions_of(USER) == []
