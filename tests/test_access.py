"""A private deployment (ALLOWED_USERS) answers only its people: one polite refusal an hour
for anyone else, then silence; /stats for Dozor's administrators, figures as set up."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiogram import Bot, Dispatcher

from bot.config import Settings, SettingsError, load_settings
from bot.domain import Post, Span
from bot.i18n import Catalog
from bot.ingest import Matcher
from bot.storage import Storage
from bot.storage.sqlite import MatchRecord
from handlers.access import AccessGate
from tests.botapi import FakeBotAPI
from tests.test_groups import ADMIN, BOT, GROUP, MEMBER, group_with_admin, in_order

TEXTS = Catalog(strict=True)
FRIEND = 801  # in ALLOWED_USERS
OWNER = 802  # in ADMIN_IDS only
STRANGER = 803
PRIVATE = Settings(  # type: ignore[call-arg]
    _env_file=None, allowed_users=[FRIEND, ADMIN], admin_ids=[OWNER]
)


def access_gate(dispatcher: Dispatcher) -> AccessGate:
    (root,) = dispatcher.sub_routers
    return next(m for m in root.message.outer_middleware if isinstance(m, AccessGate))


# --- the setting ----------------------------------------------------------------------


def test_allowed_users_are_read_as_a_list_of_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_USERS", " 801, 802 ,")
    assert load_settings(None).allowed_users == [801, 802]
    monkeypatch.setenv("ALLOWED_USERS", "")
    assert load_settings(None).allowed_users == []
    monkeypatch.setenv("ALLOWED_USERS", "801,@friend")
    with pytest.raises(SettingsError, match="ALLOWED_USERS"):
        load_settings(None)


def test_presets_file_is_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESETS_FILE", "")
    assert load_settings(None).presets_file is None
    monkeypatch.setenv("PRESETS_FILE", "/etc/dozor/presets.toml")
    assert load_settings(None).presets_file == Path("/etc/dozor/presets.toml")


def test_the_example_settings_document_it() -> None:
    text = (Path(__file__).parent.parent / ".env.example").read_text(encoding="utf-8")
    assert "\nALLOWED_USERS=\n" in text
    assert "\nPRESETS_FILE=\n" in text


# --- private chats --------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_a_stranger_is_refused_once_then_met_with_silence(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher, language: str
) -> None:
    refusal = TEXTS.texts(language)("access-refused")
    async with in_order(storage, matcher, bot, PRIVATE) as dispatcher:
        assert await api.say(STRANGER, "/start", language_code=language) == refusal
        for text in ("/help", "/subscribe Oreshnik", "Oreshnik"):
            api.push_message(STRANGER, text, language_code=language)
        # Handled in order: once the friend is answered, the stranger's updates were handled.
        assert "/subscribe" in await api.say(FRIEND, "/help")
        assert [m.text for m in api.sent_to(STRANGER)] == [refusal]
        assert await storage.get_subscriber(STRANGER) is None

        # An hour later, one more refusal.
        gate = access_gate(dispatcher)
        later = gate.clock() + 3601
        gate.clock = lambda: later
        assert await api.say(STRANGER, "/help", language_code=language) == refusal


async def test_allowed_users_and_administrators_are_answered(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    async with in_order(storage, matcher, bot, PRIVATE):
        assert "Subscribed" in await api.say(FRIEND, "/subscribe Oreshnik")
        assert "Subscribed" in await api.say(OWNER, "/subscribe Oreshnik")


async def test_a_strangers_button_press_gets_one_toast_then_a_silent_answer(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    refusal = TEXTS.texts("en")("access-refused")
    async with in_order(storage, matcher, bot, PRIVATE):
        await api.say(FRIEND, "Oreshnik")  # an offer with buttons, in the friend's chat
        offer = api.sent_to(FRIEND)[-1]
        data = offer.reply_markup["inline_keyboard"][0][0]["callback_data"]  # type: ignore[index]
        # (A stranger cannot press in someone else's private chat; a forged press is the
        # same to the bot as one from a chat it refuses.)
        first = await api.press(FRIEND, offer.message_id, data, user_id=STRANGER)
        second = await api.press(FRIEND, offer.message_id, data, user_id=STRANGER)
        assert first.text == refusal
        assert second.text is None  # the spinner stops; nothing is said
        assert await storage.subscriptions_of(FRIEND) == []


async def test_without_allowed_users_everyone_is_answered(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    async with in_order(storage, matcher, bot):
        assert "Subscribed" in await api.say(STRANGER, "/subscribe Oreshnik")


# --- groups ---------------------------------------------------------------------------


async def test_a_group_an_allowed_user_administers_is_answered(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    group_with_admin(api)  # ADMIN, an allowed user, administers GROUP
    async with in_order(storage, matcher, bot, PRIVATE):
        api.push_my_chat_member(GROUP, by_user_id=MEMBER)  # whoever added the bot
        (intro,) = await api.wait_for_sent(1, chat_id=GROUP)
        assert "Dozor" in intro.text
        reply = await api.say(GROUP, f"/help{BOT}", user_id=MEMBER, chat_type="supergroup")
        assert "/subscribe" in reply


async def test_a_group_no_allowed_user_administers_is_refused_once(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    refusal = TEXTS.texts("en")("access-refused")
    api.add_chat(GROUP, "supergroup")
    api.set_member(GROUP, STRANGER, "creator")
    async with in_order(storage, matcher, bot, PRIVATE):
        api.push_my_chat_member(GROUP, by_user_id=STRANGER)
        (first,) = await api.wait_for_sent(1, chat_id=GROUP)
        assert first.text == refusal  # no introduction, no registration
        for user in (STRANGER, MEMBER):
            api.push_message(GROUP, f"/help{BOT}", user_id=user, chat_type="supergroup")
        # An allowed user is answered anywhere (and proves the others were handled).
        reply = await api.say(GROUP, f"/help{BOT}", user_id=FRIEND, chat_type="supergroup")
        assert "/subscribe" in reply
        assert [m.text for m in api.sent_to(GROUP)] == [refusal, reply]
        assert await storage.get_subscriber(GROUP) is None

        # Removed from the group, it lets the removal through (there is nothing to forget).
        api.push_my_chat_member(GROUP, by_user_id=STRANGER, old_status="member", new_status="left")
        assert "/subscribe" in await api.say(FRIEND, "/help")


# --- /stats ---------------------------------------------------------------------------


async def _set_up_figures(storage: Storage) -> None:
    """3 subscribers (2 active), 4 queries (1 paused), 3 alerts (2 sent), 3 sources (1
    failing three times in a row, 1 stopped)."""
    for chat_id in (11, 12, 13):
        await storage.upsert_subscriber(chat_id, f"chat {chat_id}")
    await storage.deactivate_subscriber(13)
    subscriptions = []
    for chat_id, query in ((11, "Oreshnik"), (11, "Sarmat"), (12, "Oreshnik"), (12, "Yars")):
        subscription = await storage.add_subscription(chat_id, query)
        assert subscription is not None
        subscriptions.append(subscription)
    await storage.update_subscription(subscriptions[1].id, paused=True)
    for n in range(3):
        post = Post("tgweb", "milinfolive", str(n), datetime.now(UTC), f"Oreshnik {n}")
        first = subscriptions[0]
        await storage.save_post(
            post, [MatchRecord(first.id, first.chat_id, first.query, (Span(0, 8),))]
        )
    pending = await storage.pending_messages(datetime.now(UTC))
    assert len(pending) == 3
    await storage.mark_sent([pending[0].id, pending[1].id])
    ids = [await storage.ensure_source(f"tgweb:source{n}", "tgweb") for n in range(3)]
    for _ in range(3):
        await storage.record_source_error(ids[0], "HTTP 502")
    await storage.record_source_error(ids[1], "gone", stopped=True)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            [
                "3 subscribers, 2 active",
                "4 queries, 1 paused",
                "2 alerts sent today (UTC)",
                "1 message waiting to be sent, the oldest for under a minute",
                "3 sources, 2 failing",
            ],
        ),
        (
            "ru",
            [
                "3 подписчика, из них 2 активных",
                "4 запроса, на паузе: 1",
                "Сегодня (UTC) отправлено 2 уведомления",
                "1 сообщение ждёт отправки, самое старое ждёт меньше минуты",
                "3 источника, с ошибками: 2",
            ],
        ),
    ],
)
async def test_stats_show_the_figures_as_they_are(
    api: FakeBotAPI,
    bot: Bot,
    storage: Storage,
    matcher: Matcher,
    language: str,
    expected: list[str],
) -> None:
    await _set_up_figures(storage)
    settings = Settings(_env_file=None, admin_ids=[OWNER])  # type: ignore[call-arg]
    async with in_order(storage, matcher, bot, settings):
        reply = await api.say(OWNER, "/stats", language_code=language)
        for line in expected:
            assert line in reply
        refused = await api.say(STRANGER, "/stats", language_code=language)
        # Anyone else gets their own chart (none yet), never the service's figures.
        assert refused == TEXTS.texts(language)("stats-chart-empty")


async def test_stats_of_an_empty_service(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    settings = Settings(_env_file=None, admin_ids=[OWNER])  # type: ignore[call-arg]
    async with in_order(storage, matcher, bot, settings):
        reply = await api.say(OWNER, "/stats")
    assert "0 subscribers, 0 active" in reply
    assert "Nothing waiting to be sent" in reply
    assert "0 sources, none failing" in reply
