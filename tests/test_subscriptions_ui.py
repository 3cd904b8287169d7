"""/list with its buttons, /unsubscribe by text, /subscribe's preview and channels: through the
real dispatcher and the stand-in Bot API, in English and in Russian."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain import MODE_BOTH, MODE_DIGEST, MODE_INSTANT, Post
from bot.i18n import Catalog
from bot.ingest import Ingest, Matcher
from bot.storage import Storage
from tests.botapi import (
    GROUP_ANONYMOUS_BOT_ID,
    CallbackAnswer,
    FakeBotAPI,
    SentMessage,
    buttons,
    utf16_len,
)
from tests.conftest import USER, Chat

GROUP = -100_500
ADMIN = 601
MEMBER = 602
CHANNEL = -100_777_000
OTHER_USER = 502

# What each language calls things, where a test looks for it.
WORDS = {
    "en": {
        "title2": "(2 queries)",
        "both": "🔔📰 alerts and digest",
        "instant": "🔔 instant alerts only",
        "digest": "📰 digest only",
        "paused": "⏸ paused",
        "toast-paused": "Paused",
        "toast-resumed": "Resumed",
        "toast-removed": "Removed",
        "empty": "no saved queries",
        "page2": "Page 2 of 3",
        "outdated": "no longer works",
        "gone": "already removed",
        "changed": "The list has changed",
        "admins": "administrators",
        "closest": "The closest saved ones",
        "unknown": "You have no query",
        "done": "Unsubscribed",
        "subscribed": "Subscribed",
        "preview3": "3 stored posts would have matched",
        "preview-none": "No stored post of the last 7 days",
        "channel-done": "is subscribed to",
        "not-found": "I can't find the channel",
        "not-channel": "is not a channel",
        "bot-not-admin": "I'm not an administrator of",
        "user-not-admin": "Only administrators of",
        "private-only": "from your private chat",
        "channel-removed": "is unsubscribed from",
    },
    "ru": {
        "title2": "(2 запроса)",
        "both": "🔔📰 сразу и в сводке",
        "instant": "🔔 только сразу",
        "digest": "📰 только в сводке",
        "paused": "⏸ на паузе",
        "toast-paused": "На паузе",
        "toast-resumed": "Снова работает",
        "toast-removed": "Удалён",
        "empty": "нет сохранённых запросов",
        "page2": "Страница 2 из 3",
        "outdated": "больше не работает",
        "gone": "уже удалён",
        "changed": "Список изменился",
        "admins": "администратор",
        "closest": "Похожие сохранённые запросы",
        "unknown": "У вас нет запроса",
        "done": "отменена",
        "subscribed": "оформлена",
        "preview3": "подошли бы 3 сохранённых поста",
        "preview-none": "Ни один сохранённый пост за последние 7 дней",
        "channel-done": "подписан на",
        "not-found": "Не могу найти канал",
        "not-channel": "— не канал",
        "bot-not-admin": "Я не администратор канала",
        "user-not-admin": "могут только его администраторы",
        "private-only": "в личном чате со мной",
        "channel-removed": "отписан от",
    },
}
LANGUAGES = pytest.mark.parametrize("language", ["en", "ru"])


# --- helpers -------------------------------------------------------------------------------


async def send(
    api: FakeBotAPI,
    text: str,
    *,
    language: str = "en",
    chat_id: int = USER,
    user_id: int = USER,
    chat_type: str = "private",
) -> SentMessage:
    """Write `text` in a chat; the bot's reply (with its buttons)."""
    before = len(api.sent_to(chat_id))
    api.push_message(chat_id, text, user_id=user_id, chat_type=chat_type, language_code=language)
    return (await api.wait_for_sent(before + 1, chat_id=chat_id))[before]


def data_of(message: SentMessage, label: str) -> str:
    """The callback data of the button labelled `label`."""
    for row in buttons(message):
        for text, data in row:
            if text == label:
                return data
    raise AssertionError(f"no button {label!r}: {buttons(message)}")


def now_of(api: FakeBotAPI, message: SentMessage) -> SentMessage:
    current = api.current(message.chat_id, message.message_id)
    assert current is not None
    return current


async def press(
    api: FakeBotAPI,
    message: SentMessage,
    label: str,
    *,
    language: str = "en",
    user_id: int | None = None,
) -> CallbackAnswer:
    """Press a button of the message as it is now; the bot's answer to the press."""
    return await api.press(
        message.chat_id,
        message.message_id,
        data_of(now_of(api, message), label),
        user_id=user_id,
        language_code=language,
    )


async def alerts_queued(storage: Storage, matcher: Matcher, text: str) -> int:
    """Alerts queued for a new post with `text` (ingest as the service runs it)."""
    ingest = Ingest(storage, matcher, asyncio.Event())
    post_id = str(len(text)) + str(datetime.now(UTC).timestamp())
    post = Post("jsonl", "milinfo", post_id, datetime.now(UTC), text)
    return (await ingest.handle(post)).alerts_queued


async def subscribed(
    storage: Storage, matcher: Matcher, chat_id: int, *queries: str, kind: str = "private"
) -> list[int]:
    """Give a chat these queries directly (fewer updates than /subscribe); their ids."""
    await storage.upsert_subscriber(chat_id, "reader", kind=kind)
    ids = []
    for query in queries:
        subscription = await storage.add_subscription(chat_id, query)
        assert subscription is not None
        ids.append(subscription.id)
    await matcher.refresh()
    return ids


def no_failures(caplog: pytest.LogCaptureFixture) -> None:
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures == []


# --- /list and its buttons -----------------------------------------------------------------


@LANGUAGES
async def test_list_shows_each_query_with_its_state_and_buttons(
    chat: Chat, api: FakeBotAPI, storage: Storage, matcher: Matcher, language: str
) -> None:
    first, second = await subscribed(storage, matcher, USER, "Oreshnik", "Iskander <b>&")
    await storage.update_subscription(second, mode=MODE_DIGEST, paused=True)
    words = WORDS[language]
    listing = await send(api, "/list", language=language)
    assert words["title2"] in listing.text
    assert f"1. <code>Oreshnik</code>\n{words['both']}" in listing.text
    assert f"2. <code>Iskander &lt;b&gt;&amp;</code>\n{words['paused']} · {words['digest']}" in (
        listing.text
    )
    rows = buttons(listing)
    assert [[label for label, _ in row] for row in rows] == [
        ["⏸ 1", "🔔📰 1", "🗑 1"],
        ["▶️ 2", "📰 2", "🗑 2"],
    ]
    for row in rows:
        for _, data in row:
            assert len(data.encode()) <= 64
    assert str(first) in rows[0][0][1]


@LANGUAGES
async def test_pause_and_resume_edit_the_list_and_stop_and_restart_alerts(
    chat: Chat,
    api: FakeBotAPI,
    storage: Storage,
    matcher: Matcher,
    language: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (query,) = await subscribed(storage, matcher, USER, "Oreshnik")
    words = WORDS[language]
    listing = await send(api, "/list", language=language)
    sent_before = len(api.sent_to(USER))

    answer = await press(api, listing, "⏸ 1", language=language)
    assert answer.text is not None
    assert words["toast-paused"] in answer.text
    subscription = await storage.get_subscription(query)
    assert subscription is not None
    assert subscription.paused
    assert words["paused"] in now_of(api, listing).text
    assert await matcher.find("Oreshnik launched") == []
    assert await alerts_queued(storage, matcher, "Oreshnik launched again") == 0

    answer = await press(api, listing, "▶️ 1", language=language)
    assert answer.text is not None
    assert words["toast-resumed"] in answer.text
    subscription = await storage.get_subscription(query)
    assert subscription is not None
    assert not subscription.paused
    assert words["paused"] not in now_of(api, listing).text
    assert await alerts_queued(storage, matcher, "Oreshnik launched a third time") == 1

    assert len(api.sent_to(USER)) == sent_before  # edits in place, no new messages
    assert len(api.edits) == 2
    no_failures(caplog)


@LANGUAGES
async def test_the_mode_button_cycles_both_instant_digest(
    chat: Chat, api: FakeBotAPI, storage: Storage, matcher: Matcher, language: str
) -> None:
    (query,) = await subscribed(storage, matcher, USER, "Iskander")
    words = WORDS[language]
    listing = await send(api, "/list", language=language)

    await press(api, listing, "🔔📰 1", language=language)
    subscription = await storage.get_subscription(query)
    assert subscription is not None
    assert subscription.mode == MODE_INSTANT
    assert words["instant"] in now_of(api, listing).text
    assert await alerts_queued(storage, matcher, "Iskander moved north") == 1

    await press(api, listing, "🔔 1", language=language)
    subscription = await storage.get_subscription(query)
    assert subscription is not None
    assert subscription.mode == MODE_DIGEST
    assert words["digest"] in now_of(api, listing).text
    # Digest only: the match is kept for the digest, but nobody is alerted.
    assert await alerts_queued(storage, matcher, "Iskander moved south") == 0

    await press(api, listing, "📰 1", language=language)
    subscription = await storage.get_subscription(query)
    assert subscription is not None
    assert subscription.mode == MODE_BOTH
    assert words["both"] in now_of(api, listing).text


@LANGUAGES
async def test_remove_takes_one_tap_and_updates_the_list(
    chat: Chat, api: FakeBotAPI, storage: Storage, matcher: Matcher, language: str
) -> None:
    first, second = await subscribed(storage, matcher, USER, "Oreshnik", "Sarmat")
    words = WORDS[language]
    listing = await send(api, "/list", language=language)

    answer = await press(api, listing, "🗑 1", language=language)
    assert answer.text is not None
    assert words["toast-removed"] in answer.text
    assert await storage.get_subscription(first) is None
    assert await matcher.find("Oreshnik") == []
    shown = now_of(api, listing)
    assert "1. <code>Sarmat</code>" in shown.text
    assert "Oreshnik" not in shown.text

    await press(api, listing, "🗑 1", language=language)
    assert await storage.get_subscription(second) is None
    shown = now_of(api, listing)
    assert words["empty"] in shown.text
    assert buttons(shown) == []
    assert len(api.sent_to(USER)) == 1  # the list itself, edited twice


@LANGUAGES
async def test_long_lists_page_with_arrows(
    chat: Chat, api: FakeBotAPI, storage: Storage, matcher: Matcher, language: str
) -> None:
    await subscribed(storage, matcher, USER, *(f"query{n}" for n in range(1, 15)))
    words = WORDS[language]
    listing = await send(api, "/list", language=language)
    rows = buttons(listing)
    assert len(rows) == 7  # six queries and the arrows
    assert [label for label, _ in rows[-1]] == ["▶"]
    assert "6. <code>query6</code>" in listing.text
    assert "query7" not in listing.text

    await press(api, listing, "▶", language=language)
    shown = now_of(api, listing)
    assert words["page2"] in shown.text
    assert "7. <code>query7</code>" in shown.text
    assert "12. <code>query12</code>" in shown.text
    assert "query6<" not in shown.text
    assert [label for label, _ in buttons(shown)[-1]] == ["◀", "▶"]

    await press(api, listing, "▶", language=language)
    shown = now_of(api, listing)
    assert "14. <code>query14</code>" in shown.text
    assert len(buttons(shown)) == 3
    assert [label for label, _ in buttons(shown)[-1]] == ["◀"]

    # A button on a later page acts on its own query, numbered as /unsubscribe numbers it.
    await press(api, listing, "🗑 14", language=language)
    assert [s.query for s in await storage.subscriptions_of(USER)][-1] == "query13"
    await press(api, listing, "🗑 13", language=language)
    shown = now_of(api, listing)  # the last page emptied: the one before is shown
    assert "12. <code>query12</code>" in shown.text
    assert [label for label, _ in buttons(shown)[-1]] == ["◀"]


@LANGUAGES
async def test_forged_presses_get_a_toast_and_change_nothing(
    chat: Chat,
    api: FakeBotAPI,
    storage: Storage,
    matcher: Matcher,
    language: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (mine,) = await subscribed(storage, matcher, USER, "Oreshnik")
    (theirs,) = await subscribed(storage, matcher, OTHER_USER, "Sarmat")
    words = WORDS[language]
    listing = await send(api, "/list", language=language)
    forged = [
        "ql:z:1:0:0",  # no such action
        f"ql:x:{mine}:abc:0",  # not a number
        f"ql:x:{mine}:-1:0",  # a negative page
        "ql:x",  # fields missing
        f"ql:x:{mine}:0:0:9",  # a field too many
        f"ql:x:{theirs}:0:0",  # someone else's query
        f"ql:x:{theirs}:0:{OTHER_USER}",  # ... claimed as managed from here
        f"ql:x:{mine}:0:{CHANNEL}",  # a channel this chat does not manage
    ]
    for data in forged:
        answer = await api.press(
            USER, listing.message_id, data, language_code=language, check_button=False
        )
        assert answer.text is not None
        assert words["outdated"] in answer.text, data
    assert await storage.get_subscription(mine) is not None
    assert await storage.get_subscription(theirs) is not None
    assert api.edits == []
    no_failures(caplog)


@LANGUAGES
async def test_a_stale_press_after_removal_gets_a_toast_and_a_fresh_list(
    chat: Chat,
    api: FakeBotAPI,
    storage: Storage,
    matcher: Matcher,
    language: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, _ = await subscribed(storage, matcher, USER, "Oreshnik", "Sarmat")
    words = WORDS[language]
    listing = await send(api, "/list", language=language)
    await send(api, "/unsubscribe 1", language=language)
    assert await storage.get_subscription(first) is None

    answer = await press(api, listing, "⏸ 1", language=language)
    assert answer.text is not None
    assert words["gone"] in answer.text
    shown = now_of(api, listing)
    assert "Oreshnik" not in shown.text
    assert "1. <code>Sarmat</code>" in shown.text
    no_failures(caplog)


@LANGUAGES
async def test_a_press_for_a_page_that_is_gone_shows_the_last_page(
    chat: Chat, api: FakeBotAPI, storage: Storage, matcher: Matcher, language: str
) -> None:
    ids = await subscribed(storage, matcher, USER, *(f"query{n}" for n in range(1, 8)))
    words = WORDS[language]
    listing = await send(api, "/list", language=language)
    await storage.remove_subscription(ids[-1])  # seven queries become six: one page

    answer = await press(api, listing, "▶", language=language)
    assert answer.text is not None
    assert words["changed"] in answer.text
    shown = now_of(api, listing)
    assert "6. <code>query6</code>" in shown.text
    assert len(buttons(shown)) == 6  # no arrows left


@LANGUAGES
async def test_in_a_group_only_administrators_may_press(
    chat: Chat,
    api: FakeBotAPI,
    storage: Storage,
    matcher: Matcher,
    language: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (query,) = await subscribed(storage, matcher, GROUP, "Oreshnik", kind="supergroup")
    api.add_chat(GROUP, "supergroup", title="Arms control desk")
    api.set_member(GROUP, ADMIN, "administrator")
    api.set_member(GROUP, MEMBER, "member")
    listing = await send(
        api, "/list", language=language, chat_id=GROUP, user_id=ADMIN, chat_type="supergroup"
    )

    answer = await press(api, listing, "🗑 1", language=language, user_id=MEMBER)
    assert answer.text is not None
    assert WORDS[language]["admins"] in answer.text
    assert await storage.get_subscription(query) is not None
    assert api.edits == []

    await press(api, listing, "⏸ 1", language=language, user_id=ADMIN)
    subscription = await storage.get_subscription(query)
    assert subscription is not None
    assert subscription.paused

    # An anonymous administrator's press comes from GroupAnonymousBot.
    await press(api, listing, "▶️ 1", language=language, user_id=GROUP_ANONYMOUS_BOT_ID)
    subscription = await storage.get_subscription(query)
    assert subscription is not None
    assert not subscription.paused
    no_failures(caplog)


# --- /unsubscribe --------------------------------------------------------------------------


@LANGUAGES
async def test_unsubscribe_by_text_ignores_case_and_spacing(
    chat: Chat, api: FakeBotAPI, storage: Storage, matcher: Matcher, language: str
) -> None:
    await subscribed(storage, matcher, USER, "Oreshnik launch", '"INF Treaty" OR РСМД')
    reply = await send(api, "/unsubscribe   oreshnik    LAUNCH ", language=language)
    assert WORDS[language]["done"] in reply.text
    assert [s.query for s in await storage.subscriptions_of(USER)] == ['"INF Treaty" OR РСМД']
    assert await matcher.find("Oreshnik launch") == []
    reply = await send(api, '/unsubscribe "inf treaty" or рсмд', language=language)
    assert WORDS[language]["done"] in reply.text
    assert await storage.subscriptions_of(USER) == []


@LANGUAGES
async def test_unsubscribe_miss_offers_the_closest_with_numbers(
    chat: Chat, api: FakeBotAPI, storage: Storage, matcher: Matcher, language: str
) -> None:
    await subscribed(
        storage, matcher, USER, "Sarmat", "Oreshnik launch", "Oreshnik test", "Burevestnik"
    )
    reply = await send(api, "/unsubscribe oreshnik", language=language)
    assert WORDS[language]["closest"] in reply.text
    assert "2. <code>Oreshnik launch</code>" in reply.text
    assert "3. <code>Oreshnik test</code>" in reply.text
    assert "Sarmat" not in reply.text
    reply = await send(api, "/unsubscribe Burevestnic", language=language)
    assert "4. <code>Burevestnik</code>" in reply.text
    reply = await send(api, "/unsubscribe Poseidon", language=language)
    assert WORDS[language]["unknown"] in reply.text
    assert WORDS[language]["closest"] not in reply.text
    assert len(await storage.subscriptions_of(USER)) == 4


# --- /subscribe's preview ------------------------------------------------------------------


async def save_posts(storage: Storage) -> None:
    now = datetime.now(UTC)
    posts = [
        ("1", now - timedelta(days=3), "Oreshnik convoy seen near the border"),
        ("2", now - timedelta(days=2), "Weather today: <sunny> & warm"),
        ("3", now - timedelta(days=1), "Пуск «Орешника» с полигона Капустин Яр"),
        ("4", now - timedelta(hours=2), "Another Oreshnik <b>test</b> & more"),
        ("5", now - timedelta(days=10), "An old Oreshnik story"),
    ]
    for post_id, date, text in posts:
        post = Post(
            "jsonl",
            "milinfo",
            post_id,
            date,
            text,
            f"https://t.me/milinfo/{post_id}",
            channel_title="Military Info",
        )
        await storage.save_post(post, [])


@LANGUAGES
async def test_subscribe_previews_the_last_seven_days(
    chat: Chat, api: FakeBotAPI, storage: Storage, language: str
) -> None:
    await save_posts(storage)
    await storage.upsert_subscriber(USER, "reader")
    await storage.update_subscriber(USER, timezone="Europe/Moscow")
    reply = await send(api, "/subscribe Oreshnik", language=language)
    words = WORDS[language]
    assert reply.text.count(" MSK</a>") == 2  # times in the reader's own zone, labelled
    assert words["subscribed"] in reply.text
    assert words["preview3"] in reply.text  # the ten-day-old one is not counted
    assert reply.text.count("• ") == 2  # the newest two
    assert 'href="https://t.me/milinfo/4"' in reply.text
    assert 'href="https://t.me/milinfo/3"' in reply.text
    assert "https://t.me/milinfo/1" not in reply.text
    assert "Another <b>Oreshnik</b> &lt;b&gt;test&lt;/b&gt; &amp; more" in reply.text
    assert "<b>Орешника</b>" in reply.text
    assert "Military Info" in reply.text


@LANGUAGES
async def test_subscribe_says_when_nothing_lately_would_have_matched(
    chat: Chat, api: FakeBotAPI, storage: Storage, language: str
) -> None:
    await save_posts(storage)
    reply = await send(api, "/subscribe Burevestnik", language=language)
    assert WORDS[language]["subscribed"] in reply.text
    assert WORDS[language]["preview-none"] in reply.text


# --- channels ------------------------------------------------------------------------------


def a_channel(api: FakeBotAPI, *, bot: str = "administrator", user: str = "administrator") -> None:
    api.add_channel(CHANNEL, "armsnews", "Arms <News>", bot_status=bot)
    api.set_member(CHANNEL, USER, user)


@LANGUAGES
async def test_an_admin_configures_a_channel_from_a_private_chat(
    chat: Chat, api: FakeBotAPI, storage: Storage, matcher: Matcher, language: str
) -> None:
    a_channel(api)
    words = WORDS[language]
    reply = await send(api, "/subscribe @armsnews Oreshnik", language=language)
    assert words["channel-done"] in reply.text
    assert "<b>Arms &lt;News&gt;</b>" in reply.text
    channel = await storage.get_subscriber(CHANNEL)
    assert channel is not None
    assert channel.kind == "channel"
    assert channel.name == "Arms <News>"
    assert [s.query for s in await storage.subscriptions_of(CHANNEL)] == ["Oreshnik"]
    assert await storage.subscriptions_of(USER) == []
    hits = await matcher.find("Oreshnik launched")
    assert [h.subscription.chat_id for h in hits] == [CHANNEL]
    assert await alerts_queued(storage, matcher, "Oreshnik launched") == 1  # to the channel

    await send(api, f"/subscribe {CHANNEL} Sarmat", language=language)  # by its id too
    listing = await send(api, "/list @armsnews", language=language)
    assert "Arms &lt;News&gt;" in listing.text
    assert "2. <code>Sarmat</code>" in listing.text
    await press(api, listing, "⏸ 2", language=language)
    sarmat = (await storage.subscriptions_of(CHANNEL))[1]
    assert sarmat.paused

    reply = await send(api, "/unsubscribe @armsnews oreshnik", language=language)
    assert words["channel-removed"] in reply.text
    assert [s.query for s in await storage.subscriptions_of(CHANNEL)] == ["Sarmat"]
    assert await matcher.find("Oreshnik launched") == []


@LANGUAGES
async def test_channel_configuration_refusals(
    chat: Chat, api: FakeBotAPI, storage: Storage, language: str
) -> None:
    words = WORDS[language]
    reply = await send(api, "/subscribe @nosuchchannel Oreshnik", language=language)
    assert words["not-found"] in reply.text
    api.add_chat(-100_888, "supergroup", title="A group", username="agroup")
    reply = await send(api, "/subscribe @agroup Oreshnik", language=language)
    assert words["not-channel"] in reply.text
    api.add_channel(-100_999, "quiet", "Quiet", bot_status="left")
    api.set_member(-100_999, USER, "administrator")
    reply = await send(api, "/list @quiet", language=language)
    assert words["bot-not-admin"] in reply.text
    a_channel(api, user="member")
    reply = await send(api, "/unsubscribe @armsnews 1", language=language)
    assert words["user-not-admin"] in reply.text
    api.set_member(GROUP, ADMIN, "administrator")
    reply = await send(
        api,
        "/subscribe @armsnews Oreshnik",
        language=language,
        chat_id=GROUP,
        user_id=ADMIN,
        chat_type="supergroup",
    )
    assert words["private-only"] in reply.text
    assert await storage.get_subscriber(CHANNEL) is None
    assert await storage.subscriptions_of(CHANNEL) == []


async def test_a_channel_whose_bot_may_not_post_is_refused(
    chat: Chat, api: FakeBotAPI, storage: Storage
) -> None:
    a_channel(api)
    api.set_member(CHANNEL, api.bot_id, "administrator", can_post_messages=False)
    reply = await send(api, "/subscribe @armsnews Oreshnik")
    assert WORDS["en"]["bot-not-admin"] in reply.text
    assert await storage.subscriptions_of(CHANNEL) == []


# --- limits --------------------------------------------------------------------------------


async def test_a_page_of_long_hostile_queries_fits_one_message(
    chat: Chat, api: FakeBotAPI, storage: Storage, matcher: Matcher
) -> None:
    long_queries = [
        (f"Орешник{n} " + " ".join(["<b>&amp;🚀Oreshnik"] * 40))[:480] for n in range(1, 101)
    ]
    await subscribed(storage, matcher, USER, *long_queries)
    listing = await send(api, "/list")
    assert utf16_len(listing.visible_text) <= 4096
    assert "(100 queries)" in listing.text
    assert "Page 1 of 17" in listing.text
    assert "&lt;b&gt;&amp;amp;🚀Oreshnik" in listing.text  # shown, escaped, not markup
    for n in range(1, 7):
        assert f"\n{n}. Орешник{n} " in listing.visible_text
    await press(api, listing, "▶")
    shown = now_of(api, listing)
    assert utf16_len(shown.visible_text) <= 4096
    assert "\n12. Орешник12 " in shown.visible_text


@LANGUAGES
def test_toasts_fit_telegram_s_limit(language: str) -> None:
    catalog = Catalog(strict=True)
    t = catalog.texts(language)
    source = catalog.sources(language)["subscriptions.ftl"]
    keys = re.findall(r"^(list-toast-[a-z-]+) =", source, flags=re.MULTILINE)
    assert len(keys) >= 10
    for key in keys:
        text = t(key)
        assert len(text) <= 200  # Telegram's limit for a callback answer
        assert "<" not in text  # a toast is plain text
