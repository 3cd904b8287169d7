"""Groups end to end: the bot added, introduced once, removed and back; only a group's
administrators (anonymous ones too) change its queries; `/cmd@thisbot` works."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot, Dispatcher

from bot.app import build_dispatcher
from bot.config import Settings
from bot.i18n import Catalog
from bot.ingest import Matcher
from bot.storage import Storage
from handlers.start import help_text
from tests.botapi import FakeBotAPI

TEXTS = Catalog(strict=True)
GROUP = -100_200
ADMIN = 601  # administers GROUP
MEMBER = 602  # an ordinary member of GROUP
BOT = "@dozor_test_bot"


@contextlib.asynccontextmanager
async def in_order(
    storage: Storage, matcher: Matcher, bot: Bot, settings: Settings | None = None
) -> AsyncIterator[Dispatcher]:
    """The service's dispatcher polling the stand-in and handling updates one at a time, in
    the order they came: once a later update is answered, an earlier one that got no answer
    is known to have been handled in silence (no waiting for a silence to be long enough)."""
    settings = settings or Settings(_env_file=None)  # type: ignore[call-arg]
    dispatcher = build_dispatcher(storage, matcher, settings)
    task = asyncio.create_task(
        dispatcher.start_polling(
            bot,
            handle_signals=False,
            close_bot_session=False,
            polling_timeout=1,
            handle_as_tasks=False,
        )
    )
    try:
        yield dispatcher
    finally:
        if task.done():
            task.result()
        await dispatcher.stop_polling()
        await asyncio.wait_for(task, 30)


def group_with_admin(api: FakeBotAPI) -> None:
    api.add_chat(GROUP, "supergroup", title="Arms Control Desk")
    api.set_member(GROUP, ADMIN, "administrator")
    api.set_member(GROUP, MEMBER, "member")


async def say_in_group(api: FakeBotAPI, user_id: int, text: str, language: str = "en") -> str:
    return await api.say(
        GROUP, text, user_id=user_id, chat_type="supergroup", language_code=language
    )


# --- joining and leaving --------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "words"),
    [("en", ("Dozor", "administrators")), ("ru", ("Дозор", "администраторы"))],
)
async def test_added_to_a_group_it_introduces_itself_once_in_the_adders_language(
    api: FakeBotAPI,
    bot: Bot,
    storage: Storage,
    matcher: Matcher,
    language: str,
    words: tuple[str, str],
) -> None:
    group_with_admin(api)
    async with in_order(storage, matcher, bot):
        api.push_my_chat_member(GROUP, by_user_id=ADMIN, language_code=language)
        (intro,) = await api.wait_for_sent(1, chat_id=GROUP)
        for word in words:
            assert word in intro.text
        assert f"/subscribe{BOT}" in intro.text  # commands as a group's members type them
        assert f"/presets{BOT}" in intro.text
        subscriber = await storage.get_subscriber(GROUP)
        assert subscriber is not None
        assert subscriber.kind == "supergroup"
        assert subscriber.tg_language == language
        assert subscriber.name == "Arms Control Desk"

        # Promoted to administrator: the same membership, nothing to say.
        api.push_my_chat_member(
            GROUP, by_user_id=ADMIN, old_status="member", new_status="administrator"
        )
        # The next command's answer comes after the promotion was handled: it was silent.
        # And the group speaks its adder's language, whoever writes.
        other = "en" if language == "ru" else "ru"
        reply = await say_in_group(api, MEMBER, f"/help{BOT}", other)
        assert reply == help_text(TEXTS.texts(language))
        assert len(api.sent_to(GROUP)) == 2
        subscriber = await storage.get_subscriber(GROUP)
        assert subscriber is not None
        assert subscriber.introduced_at is not None  # marked once the introduction went out


async def test_removed_it_forgets_the_group_and_back_it_says_so_in_a_line(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    group_with_admin(api)
    async with in_order(storage, matcher, bot):
        api.push_my_chat_member(GROUP, by_user_id=ADMIN)
        await api.wait_for_sent(1, chat_id=GROUP)
        assert "Subscribed" in await say_in_group(api, ADMIN, f"/subscribe{BOT} Iskander")
        assert [h.subscription.chat_id for h in await matcher.find("Iskander fired")] == [GROUP]

        api.push_my_chat_member(GROUP, by_user_id=ADMIN, old_status="member", new_status="kicked")
        # A private chat's command answered after it: the removal has been handled.
        await api.say(42, "/help")
        subscriber = await storage.get_subscriber(GROUP)
        assert subscriber is not None
        assert not subscriber.active
        assert await matcher.find("Iskander fired") == []  # nothing more goes there
        assert [s.query for s in await storage.subscriptions_of(GROUP)] == ["Iskander"]

        before = len(api.sent_to(GROUP))
        api.push_my_chat_member(GROUP, by_user_id=ADMIN, old_status="kicked")
        back = (await api.wait_for_sent(before + 1, chat_id=GROUP))[-1]
        # Introduced once ever: back again, one line, and its queries match again.
        assert "back" in back.text
        assert "1 saved query is active again" in back.text
        subscriber = await storage.get_subscriber(GROUP)
        assert subscriber is not None
        assert subscriber.active
        assert [h.subscription.chat_id for h in await matcher.find("Iskander fired")] == [GROUP]


async def test_the_bot_asks_telegram_for_membership_updates(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    """`my_chat_member` is not among Telegram's default updates: polling must ask for it."""
    async with in_order(storage, matcher, bot) as dispatcher:
        assert "my_chat_member" in dispatcher.resolve_used_update_types()
        await api.say(42, "/help")
    polls = [params for method, params in api.calls if method.lower() == "getupdates"]
    assert polls
    assert all("my_chat_member" in params.get("allowed_updates", "") for params in polls)


# --- who may change a group -----------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "refusal"),
    [
        ("en", "Only this group's administrators"),
        ("ru", "только её администраторы"),
    ],
)
async def test_only_a_groups_administrators_change_its_queries(
    api: FakeBotAPI,
    bot: Bot,
    storage: Storage,
    matcher: Matcher,
    language: str,
    refusal: str,
) -> None:
    group_with_admin(api)
    async with in_order(storage, matcher, bot):
        api.push_my_chat_member(GROUP, by_user_id=ADMIN, language_code=language)
        await api.wait_for_sent(1, chat_id=GROUP)

        assert refusal in await say_in_group(api, MEMBER, f"/subscribe{BOT} Oreshnik", language)
        assert await storage.subscriptions_of(GROUP) == []

        await say_in_group(api, ADMIN, f"/subscribe{BOT} Oreshnik", language)
        # An anonymous administrator writes as the group itself.
        anonymous = await api.say(
            GROUP,
            f"/subscribe{BOT} Kalibr",
            chat_type="supergroup",
            sender_chat=api.chat(GROUP),
        )
        assert refusal not in anonymous
        assert [s.query for s in await storage.subscriptions_of(GROUP)] == ["Oreshnik", "Kalibr"]

        # Looking is open to everyone; changing is not, whatever the command or its alias.
        listing = await say_in_group(api, MEMBER, f"/list{BOT}", language)
        assert "Oreshnik" in listing
        for command in ("/unsubscribe 1", "/settings", "/lang ru", "/tz Europe/Moscow"):
            head, _, args = command.partition(" ")
            reply = await say_in_group(api, MEMBER, f"{head}{BOT} {args}".strip(), language)
            assert refusal in reply, command
        assert len(await storage.subscriptions_of(GROUP)) == 2


async def test_a_member_typing_start_does_not_change_the_groups_language(
    api: FakeBotAPI, bot: Bot, storage: Storage, matcher: Matcher
) -> None:
    group_with_admin(api)
    async with in_order(storage, matcher, bot):
        api.push_my_chat_member(GROUP, by_user_id=ADMIN, language_code="ru")
        await api.wait_for_sent(1, chat_id=GROUP)
        # /start is open to everyone; it must not switch the group to the member's language
        # (alerts, digests and every reply would follow), nor may an admin's /subscribe.
        await say_in_group(api, MEMBER, f"/start{BOT}", "en")
        await say_in_group(api, ADMIN, f"/subscribe{BOT} Oreshnik", "en")
        reply = await say_in_group(api, MEMBER, f"/help{BOT}", "en")
        assert reply == help_text(TEXTS.texts("ru"))
        subscriber = await storage.get_subscriber(GROUP)
        assert subscriber is not None
        assert subscriber.tg_language == "ru"
