"""Tests for the interactive parts of the fake Bot API in ``tests/botapi.py``.

Inline keyboards and button presses, edits, chat members and groups, channels,
per-language commands and file uploads, each driven through the real aiogram ``Bot``
(and, where updates are involved, aiogram's own ``Dispatcher``), so that the JSON the
fake answers with is checked by aiogram's models exactly as the bot will see it.
"""

from __future__ import annotations

import asyncio
import struct
import time
import zlib
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.filters import Command
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    ChatMemberAdministrator,
    ChatMemberBanned,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberOwner,
    ChatMemberRestricted,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MenuButtonCommands,
    MenuButtonDefault,
    Message,
    MessageOriginChannel,
)

from tests.botapi import (
    CHANNEL_BOT_ID,
    GROUP_ANONYMOUS_BOT_ID,
    FakeBotAPI,
    buttons,
    parse_html_entities,
)
from tests.conftest import dispatching

TOKEN = "4242:TEST-token_abc"
USER = 1001
GROUP = -100_123
CHANNEL = -100_777
WAIT = 30.0  # generous bound for anything the bot does in the background


def make_bot(api: FakeBotAPI, *, parse_mode: str | None = None) -> Bot:
    return Bot(
        TOKEN,
        session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)),
        default=DefaultBotProperties(parse_mode=parse_mode),
    )


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    # Its own plain Bot (no default parse mode), independent of the service's make_bot.
    client = make_bot(api)
    yield client
    await client.session.close()


def keyboard(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    """An inline keyboard of (text, callback_data) buttons; "https://" data is a url."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=text, url=data)
                if data.startswith("https://")
                else InlineKeyboardButton(text=text, callback_data=data)
                for text, data in row
            ]
            for row in rows
        ]
    )


def same(markup: InlineKeyboardMarkup | object, expected: InlineKeyboardMarkup) -> bool:
    """Whether an answered keyboard equals ``expected`` (by content: aiogram's models
    compare bookkeeping too)."""
    assert isinstance(markup, InlineKeyboardMarkup), markup
    return markup.model_dump(exclude_none=True) == expected.model_dump(exclude_none=True)


def pairs(commands: list[BotCommand]) -> list[tuple[str, str]]:
    return [(c.command, c.description) for c in commands]


def png(width: int, height: int, padding: int = 0) -> bytes:
    """A valid RGB PNG image (plus ``padding`` bytes in an ancillary chunk)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xc0\x10\x10" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    extra = chunk(b"teXt", b"pad\x00" + b"x" * padding) if padding else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# ------------------------------------------------------- push_message options


async def test_push_message_language_code(api: FakeBotAPI, bot: Bot) -> None:
    api.push_message(USER, "default")
    api.push_message(USER, "russian", language_code="ru")
    api.push_message(USER, "hidden", language_code=None)
    updates = await bot.get_updates()
    users = [u.message.from_user for u in updates if u.message]
    assert [u.language_code if u else "?" for u in users] == ["en", "ru", None]


async def test_forwarded_from_a_channel(api: FakeBotAPI, bot: Bot) -> None:
    posted = int(time.time()) - 3600
    origin = {
        "type": "channel",
        "chat": {
            "id": -100_123_456,
            "type": "channel",
            "title": "Military Russia",
            "username": "militaryrussiaru",
        },
        "message_id": 36594,
        "date": posted,
    }
    api.push_message(USER, "look at this", forward_origin=origin)
    [update] = await bot.get_updates()
    assert update.message is not None
    forwarded = update.message.forward_origin
    assert isinstance(forwarded, MessageOriginChannel)
    assert forwarded.chat.username == "militaryrussiaru"
    assert forwarded.chat.title == "Military Russia"
    assert forwarded.message_id == 36594
    assert int(forwarded.date.timestamp()) == posted


async def test_anonymous_admin_and_channel_senders(api: FakeBotAPI, bot: Bot) -> None:
    api.add_chat(GROUP, "supergroup", title="Analysts")
    api.push_message(GROUP, "/settings", chat_type="supergroup", sender_chat=api.chat(GROUP))
    linked = {"id": CHANNEL, "type": "channel", "title": "Linked channel"}
    api.push_message(GROUP, "from a channel", chat_type="supergroup", sender_chat=linked)
    anonymous, on_behalf = [u.message for u in await bot.get_updates()]
    assert anonymous is not None
    assert on_behalf is not None

    assert anonymous.chat.title == "Analysts"  # the registered title is kept
    assert anonymous.sender_chat is not None
    assert anonymous.sender_chat.id == GROUP
    assert anonymous.from_user is not None
    assert anonymous.from_user.id == GROUP_ANONYMOUS_BOT_ID
    assert anonymous.from_user.username == "GroupAnonymousBot"
    assert anonymous.from_user.is_bot

    assert on_behalf.sender_chat is not None
    assert on_behalf.sender_chat.type == "channel"
    assert on_behalf.from_user is not None
    assert on_behalf.from_user.id == CHANNEL_BOT_ID


async def test_reply_to_a_message(api: FakeBotAPI, bot: Bot) -> None:
    sent = await bot.send_message(USER, "<b>Alert</b> one", parse_mode="HTML")
    api.push_message(USER, "mute this", reply_to_message_id=sent.message_id)
    api.push_message(USER, "reply to nothing", reply_to_message_id=999_999)
    first, second = [u.message for u in await bot.get_updates()]
    assert first is not None
    assert second is not None
    assert first.reply_to_message is not None
    assert first.reply_to_message.message_id == sent.message_id
    assert first.reply_to_message.text == "Alert one"
    assert first.reply_to_message.html_text == "<b>Alert</b> one"
    assert second.reply_to_message is None


async def test_channel_post(api: FakeBotAPI, bot: Bot) -> None:
    api.push_channel_post(CHANNEL, "breaking", title="Wire", username="wire_news")
    [update] = await bot.get_updates()
    post = update.channel_post
    assert post is not None
    assert post.chat.type == "channel"
    assert post.sender_chat is not None
    assert post.sender_chat.username == "wire_news"
    assert post.from_user is None
    # Bots only get the posts of channels they administer, so the bot may post there.
    reply = await bot.send_message(CHANNEL, "noted")
    assert reply.sender_chat is not None
    assert reply.sender_chat.id == CHANNEL


async def test_say_passes_the_options_through(api: FakeBotAPI, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message(Command("lang"))
    async def lang(message: Message) -> None:
        assert message.from_user is not None
        await message.answer(f"lang={message.from_user.language_code}")

    @dp.message(F.forward_origin)
    async def forwarded(message: Message) -> None:
        assert isinstance(message.forward_origin, MessageOriginChannel)
        await message.answer(f"from @{message.forward_origin.chat.username}")

    origin = {
        "type": "channel",
        "chat": {"id": CHANNEL, "type": "channel", "title": "C", "username": "chan"},
        "message_id": 5,
        "date": int(time.time()),
    }
    async with dispatching(dp, bot):
        assert await api.say(USER, "/lang", language_code="ru") == "lang=ru"
        assert await api.say(USER, "/lang", language_code=None) == "lang=None"
        assert await api.say(USER, "fwd", forward_origin=origin) == "from @chan"


# ---------------------------------------------------------- inline keyboards


async def test_keyboard_round_trip(api: FakeBotAPI, bot: Bot) -> None:
    markup = keyboard([("One", "n:1"), ("Two", "n:2")], [("Site", "https://example.org/")])
    message = await bot.send_message(
        USER, "<b>Pick</b> one", parse_mode="HTML", reply_markup=markup
    )

    assert same(message.reply_markup, markup)  # Telegram echoes the inline keyboard
    assert message.html_text == "<b>Pick</b> one"  # and the entities of the text
    [sent] = api.sent
    assert sent.reply_markup is not None
    assert buttons(sent) == [[("One", "n:1"), ("Two", "n:2")], [("Site", "https://example.org/")]]
    assert buttons(api.current(USER, message.message_id)) == buttons(sent)
    assert buttons(None) == []
    plain = await bot.send_message(USER, "no keyboard")
    assert plain.reply_markup is None
    assert api.sent[-1].reply_markup is None


async def test_invalid_keyboards_are_rejected(api: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(USER, "x", reply_markup=keyboard([("Long", "x" * 65)]))
    with pytest.raises(TelegramBadRequest, match="Text buttons are unallowed"):
        await bot.send_message(
            USER,
            "x",
            reply_markup=InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="t")]]),
        )
    await bot.send_message(USER, "x", reply_markup=keyboard([("Exactly 64", "y" * 64)]))
    assert len(api.sent) == 1


async def test_press_is_answered_and_edits(api: FakeBotAPI, bot: Bot) -> None:
    seen: list[CallbackQuery] = []
    dp = Dispatcher()

    @dp.callback_query(F.data.startswith("page:"))
    async def page(callback: CallbackQuery) -> None:
        seen.append(callback)
        assert callback.data is not None
        number = callback.data.split(":")[1]
        await callback.answer(f"Page {number}")
        assert isinstance(callback.message, Message)
        await callback.message.edit_text(
            f"<b>Results</b>, page {number}",
            parse_mode="HTML",
            reply_markup=keyboard([("Back", "page:1")]),
        )

    first = await bot.send_message(
        USER,
        "<b>Results</b>, page 1",
        parse_mode="HTML",
        reply_markup=keyboard([("Next", "page:2")]),
    )
    async with dispatching(dp, bot):
        answer = await api.press(USER, first.message_id, "page:2", language_code="ru")
        assert (answer.text, answer.show_alert) == ("Page 2", False)
        [edit] = await api.wait_for_edits(1, chat_id=USER, timeout=WAIT)

    # The handler saw the message as Telegram sends it with a press.
    [callback] = seen
    assert callback.id == answer.query_id
    assert callback.from_user.id == USER
    assert callback.from_user.language_code == "ru"
    assert isinstance(callback.message, Message)
    assert callback.message.message_id == first.message_id
    assert callback.message.html_text == "<b>Results</b>, page 1"
    assert same(callback.message.reply_markup, keyboard([("Next", "page:2")]))

    assert edit.method == "editMessageText"
    assert (edit.chat_id, edit.message_id) == (USER, first.message_id)
    assert edit.text == "<b>Results</b>, page 2"
    assert edit.visible_text == "Results, page 2"
    assert buttons(edit.reply_markup) == [[("Back", "page:1")]]
    # The record of what was sent is kept; current() shows the message now.
    assert api.sent[0].text == "<b>Results</b>, page 1"
    now = api.current(USER, first.message_id)
    assert now is not None
    assert now.text == "<b>Results</b>, page 2"
    assert buttons(now) == [[("Back", "page:1")]]
    assert api.callback_answers == [answer]
    assert api.callback_queries[answer.query_id]["data"] == "page:2"


async def test_press_checks_the_message_and_button(api: FakeBotAPI, bot: Bot) -> None:
    message = await bot.send_message(USER, "pick", reply_markup=keyboard([("A", "a")]))
    with pytest.raises(ValueError, match=r"no button with callback_data 'b'.*\[\('A', 'a'\)\]"):
        api.push_callback(USER, message.message_id, "b")
    with pytest.raises(LookupError, match="no message 999"):
        api.push_callback(USER, 999, "a")
    with pytest.raises(ValueError, match="is a private chat, not supergroup"):
        api.push_callback(USER, message.message_id, "a", chat_type="supergroup")
    # A stale button can still be pressed deliberately.
    update_id = api.push_callback(USER, message.message_id, "gone", check_button=False)
    [update] = await bot.get_updates()
    assert update.update_id == update_id
    assert update.callback_query is not None
    assert update.callback_query.id == str(update_id)
    assert update.callback_query.data == "gone"


async def test_callback_answer_alert_and_double_answer(api: FakeBotAPI, bot: Bot) -> None:
    message = await bot.send_message(GROUP, "vote", reply_markup=keyboard([("Yes", "yes")]))
    update_id = api.push_callback(GROUP, message.message_id, "yes", user_id=55)
    [update] = await bot.get_updates()
    query = update.callback_query
    assert query is not None
    assert query.from_user.id == 55
    assert isinstance(query.message, Message)
    assert query.message.chat.type == "supergroup"

    assert await bot.answer_callback_query(query.id, text="Only admins may vote", show_alert=True)
    [answer] = api.callback_answers
    assert (answer.query_id, answer.text, answer.show_alert) == (
        str(update_id),
        "Only admins may vote",
        True,
    )
    # A query can be answered only once.
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)
    assert len(api.callback_answers) == 1


async def test_press_timeout_explains(api: FakeBotAPI, bot: Bot) -> None:
    message = await bot.send_message(USER, "pick", reply_markup=keyboard([("A", "a")]))
    started = time.monotonic()
    with pytest.raises(AssertionError) as caught:
        await api.press(USER, message.message_id, "a", timeout=0.3)
    assert time.monotonic() - started < 10
    report = str(caught.value)
    assert f"press of 'a' on message {message.message_id} in chat {USER}" in report
    assert "never fetched: is a dispatcher polling?" in report


# -------------------------------------------------------------------- edits


async def test_edit_message_text(api: FakeBotAPI, bot: Bot) -> None:
    markup = keyboard([("A", "a")])
    message = await bot.send_message(USER, "<b>v1</b>", parse_mode="HTML", reply_markup=markup)
    mid = message.message_id

    edited = await bot.edit_message_text(
        "<b>v2</b>", chat_id=USER, message_id=mid, parse_mode="HTML", reply_markup=markup
    )
    assert isinstance(edited, Message)
    assert edited.text == "v2"
    assert edited.edit_date is not None
    assert same(edited.reply_markup, markup)

    # The same text and markup again: Telegram refuses.
    with pytest.raises(TelegramBadRequest, match="message is not modified") as caught:
        await bot.edit_message_text(
            "<b>v2</b>", chat_id=USER, message_id=mid, parse_mode="HTML", reply_markup=markup
        )
    assert "exactly the same as a current content and reply markup" in caught.value.message
    # Same letters, other formatting: modified.
    await bot.edit_message_text(
        "v2", chat_id=USER, message_id=mid, parse_mode="HTML", reply_markup=markup
    )
    # Same text without reply_markup removes the keyboard, so that is a change too.
    removed = await bot.edit_message_text("v2", chat_id=USER, message_id=mid)
    assert isinstance(removed, Message)
    assert removed.reply_markup is None
    current = api.current(USER, mid)
    assert current is not None
    assert current.reply_markup is None
    assert current.text == "v2"

    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.edit_message_text("<b>v3", chat_id=USER, message_id=mid, parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("v3", chat_id=USER, message_id=mid + 100)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("v3", chat_id=USER + 1, message_id=mid)
    assert [e.text for e in api.edits] == ["<b>v2</b>", "v2", "v2"]
    assert [m.text for m in api.sent] == ["<b>v1</b>"]


async def test_edit_reply_markup_and_delete(api: FakeBotAPI, bot: Bot) -> None:
    message = await bot.send_message(USER, "menu", reply_markup=keyboard([("A", "a")]))
    mid = message.message_id
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(
            chat_id=USER, message_id=mid, reply_markup=keyboard([("A", "a")])
        )
    changed = await bot.edit_message_reply_markup(
        chat_id=USER, message_id=mid, reply_markup=keyboard([("B", "b")])
    )
    assert isinstance(changed, Message)
    assert changed.text == "menu"
    await bot.edit_message_reply_markup(chat_id=USER, message_id=mid)  # removes it
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=USER, message_id=mid)
    assert [(e.method, e.text, buttons(e.reply_markup)) for e in api.edits] == [
        ("editMessageReplyMarkup", None, [[("B", "b")]]),
        ("editMessageReplyMarkup", None, []),
    ]

    assert await bot.delete_message(USER, mid)
    assert api.deleted == [(USER, mid)]
    assert api.current(USER, mid) is None
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("late", chat_id=USER, message_id=mid)


async def test_users_messages_cannot_be_edited(api: FakeBotAPI, bot: Bot) -> None:
    api.push_message(USER, "mine")
    [update] = await bot.get_updates()
    assert update.message is not None
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("yours", chat_id=USER, message_id=update.message.message_id)


async def test_edits_obey_block_limits_and_fail_next(api: FakeBotAPI, bot: Bot) -> None:
    message = await bot.send_message(USER, "v1")
    api.fail_next("editMessageText", status=400, description="Bad Request: injected")
    with pytest.raises(TelegramBadRequest, match="injected"):
        await bot.edit_message_text("v2", chat_id=USER, message_id=message.message_id)

    api.enforce_limits()  # the message just sent counts, and so does an edit
    with pytest.raises(TelegramRetryAfter):
        await bot.edit_message_text("v2", chat_id=USER, message_id=message.message_id)
    assert api.limit_hits == 1
    api.enforce_limits(limit_edits=False)
    await bot.edit_message_text("v2", chat_id=USER, message_id=message.message_id)

    api.block_chat(USER)
    with pytest.raises(TelegramForbiddenError, match="blocked by the user"):
        await bot.edit_message_text("v3", chat_id=USER, message_id=message.message_id)
    assert [e.text for e in api.edits] == ["v2"]


async def test_wait_for_edits_timeout_explains(api: FakeBotAPI, bot: Bot) -> None:
    message = await bot.send_message(USER, "v1")
    with pytest.raises(TelegramBadRequest):
        await bot.edit_message_text("v1", chat_id=USER, message_id=message.message_id)
    with pytest.raises(AssertionError) as caught:
        await api.wait_for_edits(1, chat_id=USER, timeout=0.3)
    report = str(caught.value)
    assert f"expected at least 1 edit(s) in chat {USER}" in report
    assert "message is not modified" in report


def test_entities_match_telegram() -> None:
    text = (
        '<b>a<i>😀</i></b> <a href="https://x.org/">l</a> '
        '<pre><code class="language-py">x</code></pre>'
    )
    visible, entities = parse_html_entities(text)
    assert visible == "a😀 l x"
    assert entities == [
        {"type": "bold", "offset": 0, "length": 3},  # the emoji is two UTF-16 units
        {"type": "italic", "offset": 1, "length": 2},
        {"type": "text_link", "offset": 4, "length": 1, "url": "https://x.org/"},
        {"type": "pre", "offset": 6, "length": 1, "language": "py"},
    ]
    assert parse_html_entities("<b></b>x<blockquote expandable>q</blockquote>")[1] == [
        {"type": "expandable_blockquote", "offset": 1, "length": 1}
    ]


# --------------------------------------------------------- members and chats


async def test_chat_member_statuses(api: FakeBotAPI, bot: Bot) -> None:
    expected = {
        1: ("creator", ChatMemberOwner),
        2: ("administrator", ChatMemberAdministrator),
        3: ("member", ChatMemberMember),
        4: ("restricted", ChatMemberRestricted),
        5: ("left", ChatMemberLeft),
        6: ("kicked", ChatMemberBanned),
    }
    for user_id, (status, _) in expected.items():
        api.set_member(GROUP, user_id, status)
    for user_id, (status, cls) in expected.items():
        member = await bot.get_chat_member(GROUP, user_id)
        assert (type(member), member.status, member.user.id) == (cls, status, user_id)

    # Defaults: everyone is a member of a group, the bot included.
    assert isinstance(await bot.get_chat_member(GROUP, 99), ChatMemberMember)
    me = await bot.get_chat_member(GROUP, api.bot_id)
    assert isinstance(me, ChatMemberMember)
    assert me.user.is_bot
    # In a private chat the person and the bot are plain members.
    assert isinstance(await bot.get_chat_member(USER, USER), ChatMemberMember)
    assert isinstance(await bot.get_chat_member(USER, api.bot_id), ChatMemberMember)
    # Fields can be overridden, and a pushed user's name is used.
    api.push_message(GROUP, "hi", user_id=7, first_name="Ann", chat_type="supergroup")
    api.set_member(GROUP, 7, "administrator", can_restrict_members=False, custom_title="Mod")
    admin = await bot.get_chat_member(GROUP, 7)
    assert isinstance(admin, ChatMemberAdministrator)
    assert (admin.can_restrict_members, admin.custom_title) == (False, "Mod")
    assert admin.user.first_name == "Ann"
    assert sum(method == "getChatMember" for method, _ in api.calls) == 11
    with pytest.raises(ValueError, match="unknown chat member status"):
        api.set_member(GROUP, 8, "owner")


async def test_chat_administrators(api: FakeBotAPI, bot: Bot) -> None:
    api.set_member(GROUP, 2, "administrator")
    api.set_member(GROUP, 1, "creator")
    api.set_member(GROUP, 3, "member")
    admins = await bot.get_chat_administrators(GROUP)
    assert [(type(a), a.user.id) for a in admins] == [
        (ChatMemberOwner, 1),
        (ChatMemberAdministrator, 2),
    ]
    with pytest.raises(TelegramBadRequest, match="no administrators in the private chat"):
        await bot.get_chat_administrators(USER)


async def test_channel_membership(api: FakeBotAPI, bot: Bot) -> None:
    api.add_channel(CHANNEL, "militaryrussiaru", "Military Russia")
    me = await bot.get_chat_member(CHANNEL, api.bot_id)
    assert isinstance(me, ChatMemberLeft)
    with pytest.raises(TelegramBadRequest, match="member list is inaccessible"):
        await bot.get_chat_member(CHANNEL, USER)
    with pytest.raises(TelegramForbiddenError, match="not a member of the channel chat"):
        await bot.send_message(CHANNEL, "post")

    api.set_member(CHANNEL, api.bot_id, "administrator")
    me = await bot.get_chat_member("@militaryrussiaru", api.bot_id)
    assert isinstance(me, ChatMemberAdministrator)
    assert me.can_post_messages is True
    assert isinstance(await bot.get_chat_member(CHANNEL, USER), ChatMemberMember)
    [admin] = await bot.get_chat_administrators(CHANNEL)
    assert admin.user.id == api.bot_id
    post = await bot.send_message("@militaryrussiaru", "post")
    assert post.chat.id == CHANNEL
    assert post.sender_chat is not None


async def test_get_chat(api: FakeBotAPI, bot: Bot) -> None:
    api.add_channel(CHANNEL, "militaryrussiaru", "Military Russia")
    by_name = await bot.get_chat("@militaryrussiaru")
    assert (by_name.id, by_name.type, by_name.title) == (CHANNEL, "channel", "Military Russia")
    assert (await bot.get_chat("@MilitaryRussiaRu")).id == CHANNEL  # case-insensitive
    assert (await bot.get_chat(CHANNEL)).username == "militaryrussiaru"

    api.push_message(USER, "hi", first_name="Ann")
    private = await bot.get_chat(USER)
    assert (private.type, private.first_name) == ("private", "Ann")
    await bot.send_message(GROUP, "the bot is in this group")
    assert (await bot.get_chat(GROUP)).type == "supergroup"

    for unknown in (-100_999, "@nobody_here"):
        with pytest.raises(TelegramBadRequest, match="chat not found"):
            await bot.get_chat(unknown)


async def test_my_chat_member_reaches_a_handler(api: FakeBotAPI, bot: Bot) -> None:
    events: list[ChatMemberUpdated] = []
    all_four = asyncio.Event()
    dp = Dispatcher()

    @dp.my_chat_member()
    async def membership(event: ChatMemberUpdated) -> None:
        events.append(event)
        if len(events) == 4:
            all_four.set()
        if event.new_chat_member.status == "member":
            await bot.send_message(event.chat.id, "Hello, group!")

    async with dispatching(dp, bot):
        api.push_my_chat_member(GROUP, title="Analysts", by_user_id=55, language_code="ru")
        [greeting] = await api.wait_for_sent(1, chat_id=GROUP, timeout=WAIT)
        api.push_my_chat_member(GROUP, old_status="member", new_status="kicked")
        api.push_my_chat_member(
            CHANNEL, chat_type="channel", title="Alerts", new_status="administrator"
        )
        api.push_my_chat_member(
            USER, chat_type="private", old_status="member", new_status="kicked"
        )
        await asyncio.wait_for(all_four.wait(), WAIT)

    # Updates are handled concurrently, so the order of the events is not fixed.
    found = {(e.chat.id, type(e.new_chat_member)): e for e in events}
    added = found[GROUP, ChatMemberMember]
    kicked = found[GROUP, ChatMemberBanned]
    channel = found[CHANNEL, ChatMemberAdministrator]
    blocked = found[USER, ChatMemberBanned]
    assert greeting.text == "Hello, group!"
    assert added.chat.title == "Analysts"
    assert added.from_user.id == 55
    assert added.from_user.language_code == "ru"
    assert isinstance(added.old_chat_member, ChatMemberLeft)
    assert isinstance(added.new_chat_member, ChatMemberMember)
    assert added.new_chat_member.user.id == api.bot_id
    assert isinstance(kicked.new_chat_member, ChatMemberBanned)
    assert kicked.chat.title == "Analysts"
    assert isinstance(channel.new_chat_member, ChatMemberAdministrator)
    assert channel.chat.type == "channel"
    assert isinstance(blocked.new_chat_member, ChatMemberBanned)
    assert blocked.chat.type == "private"

    # The fake remembers: the bot is out of the group, posts in the channel, is blocked.
    assert isinstance(await bot.get_chat_member(GROUP, api.bot_id), ChatMemberBanned)
    with pytest.raises(TelegramForbiddenError, match="bot was kicked from the supergroup chat"):
        await bot.send_message(GROUP, "still here?")
    await bot.send_message(CHANNEL, "alert")
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER, "hello?")


# ------------------------------------------------------ commands, menu button


async def test_commands_per_language_and_scope(api: FakeBotAPI, bot: Bot) -> None:
    english = [
        BotCommand(command="start", description="Start"),
        BotCommand(command="help", description="Help"),
    ]
    russian = [BotCommand(command="start", description="Начать")]
    group = [BotCommand(command="status", description="Status")]
    assert await bot.set_my_commands(english)
    assert await bot.set_my_commands(russian, language_code="ru")
    assert await bot.set_my_commands(group, scope=BotCommandScopeAllGroupChats())

    assert pairs(await bot.get_my_commands()) == pairs(english)
    assert pairs(await bot.get_my_commands(language_code="ru")) == pairs(russian)
    assert await bot.get_my_commands(language_code="de") == []  # no fallback, as Telegram
    assert pairs(await bot.get_my_commands(scope=BotCommandScopeAllGroupChats())) == pairs(group)
    assert await bot.get_my_commands(scope=BotCommandScopeChat(chat_id=GROUP)) == []
    assert api.commands("default", "ru") == [{"command": "start", "description": "Начать"}]
    assert api.commands({"type": "all_group_chats"}) == [
        {"command": "status", "description": "Status"}
    ]

    assert await bot.delete_my_commands(language_code="ru")
    assert await bot.get_my_commands(language_code="ru") == []
    assert pairs(await bot.get_my_commands()) == pairs(english)
    assert await bot.set_my_commands([])  # an empty list deletes too
    assert api.commands() == []

    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Start", description="x")])
    with pytest.raises(TelegramBadRequest, match="language code"):
        await bot.set_my_commands(english, language_code="en-US")


async def test_menu_button(api: FakeBotAPI, bot: Bot) -> None:
    assert isinstance(await bot.get_chat_menu_button(), MenuButtonDefault)
    assert await bot.set_chat_menu_button(menu_button=MenuButtonCommands())
    assert isinstance(await bot.get_chat_menu_button(), MenuButtonCommands)
    assert isinstance(await bot.get_chat_menu_button(chat_id=USER), MenuButtonCommands)
    assert api.menu_buttons == {None: {"type": "commands"}}


# ---------------------------------------------------------------- uploads


async def test_photo_upload(api: FakeBotAPI, bot: Bot) -> None:
    image = png(3, 2)
    message = await bot.send_photo(
        USER,
        BufferedInputFile(image, filename="chart.png"),
        caption="<b>Week</b> &amp; trend",
        parse_mode="HTML",
        reply_markup=keyboard([("Details", "chart:details")]),
    )
    assert message.photo is not None
    biggest = message.photo[-1]
    assert (biggest.width, biggest.height, biggest.file_size) == (3, 2, len(image))
    assert message.caption == "Week & trend"
    assert message.html_text == "<b>Week</b> &amp; trend"
    assert message.text is None

    [sent] = api.sent
    assert (sent.method, sent.chat_id, sent.filename, sent.file) == (
        "sendPhoto",
        USER,
        "chart.png",
        image,
    )
    assert sent.caption == "<b>Week</b> &amp; trend"
    assert sent.visible_text == "Week & trend"
    assert sent.parse_mode == "HTML"
    assert buttons(sent) == [[("Details", "chart:details")]]
    assert sent.message_id == message.message_id

    # Sent again by file_id: nothing uploaded.
    again = await bot.send_photo(GROUP, biggest.file_id)
    assert again.photo is not None
    assert again.photo[-1].file_id == biggest.file_id
    assert (api.sent[-1].file, api.sent[-1].caption) == (None, "")

    # A photo's keyboard can be edited; its text cannot, it has none.
    await bot.edit_message_reply_markup(chat_id=USER, message_id=message.message_id)
    with pytest.raises(TelegramBadRequest, match="no text in the message to edit"):
        await bot.edit_message_text("x", chat_id=USER, message_id=message.message_id)


async def test_photo_over_a_megabyte(api: FakeBotAPI, bot: Bot) -> None:
    image = png(1, 1, padding=3 * 1024 * 1024)
    message = await bot.send_photo(USER, BufferedInputFile(image, filename="big.png"))
    assert message.photo is not None
    assert api.sent[0].file == image


async def test_photo_errors(api: FakeBotAPI, bot: Bot) -> None:
    image = BufferedInputFile(png(1, 1), filename="p.png")
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(USER, image, caption="x" * 1025)
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(USER, image, caption="😀" * 512 + "x")  # UTF-16 units
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_photo(USER, image, caption="<b>open", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(USER, BufferedInputFile(b"not an image", filename="p.png"))
    with pytest.raises(TelegramBadRequest, match="file must be non-empty"):
        await bot.send_photo(USER, BufferedInputFile(b"", filename="p.png"))
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(USER, "no-such-file-id")
    await bot.send_photo(USER, image, caption="<b>" + "😀" * 512 + "</b>", parse_mode="HTML")
    assert len(api.sent) == 1


async def test_document_upload(api: FakeBotAPI, bot: Bot) -> None:
    data = b"date,alerts\n2026-11-20,3\n"
    # With a default parse mode (as the service's Bot has) the caption is HTML too.
    html_bot = make_bot(api, parse_mode="HTML")
    try:
        message = await html_bot.send_document(
            GROUP, BufferedInputFile(data, filename="export.csv"), caption="Export &lt;v1&gt;"
        )
    finally:
        await html_bot.session.close()
    assert message.document is not None
    assert message.document.file_name == "export.csv"
    assert message.document.mime_type == "text/csv"
    assert message.document.file_size == len(data)
    assert message.caption == "Export <v1>"

    [sent] = api.sent_to(GROUP)
    assert (sent.method, sent.file, sent.filename, sent.parse_mode) == (
        "sendDocument",
        data,
        "export.csv",
        "HTML",
    )
    assert sent.caption == "Export &lt;v1&gt;"
    # Documents are not images, so any bytes do.
    await bot.send_document(USER, BufferedInputFile(b"\x00\x01", filename="blob.bin"))
    assert api.sent[-1].file == b"\x00\x01"


async def test_uploads_obey_block_limits_and_fail_next(api: FakeBotAPI, bot: Bot) -> None:
    def file() -> BufferedInputFile:
        return BufferedInputFile(png(1, 1), filename="p.png")

    api.fail_next("sendDocument", status=500, description="Internal Server Error")
    with pytest.raises(Exception, match="Internal Server Error"):
        await bot.send_document(USER, file())

    api.enforce_limits()
    await bot.send_photo(USER, file())
    with pytest.raises(TelegramRetryAfter):
        await bot.send_document(USER, file())  # the photo counts as a message
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(USER, "and a text after it")
    assert api.limit_hits == 2

    api.block_chat(USER + 1)
    with pytest.raises(TelegramForbiddenError, match="blocked by the user"):
        await bot.send_photo(USER + 1, file())
    assert [m.method for m in api.sent] == ["sendPhoto"]


async def test_say_returns_a_photo_caption(api: FakeBotAPI, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message(Command("chart"))
    async def chart(message: Message) -> None:
        await message.answer_photo(BufferedInputFile(png(2, 2), "c.png"), caption="Chart")

    async with dispatching(dp, bot):
        assert await api.say(USER, "/chart") == "Chart"
    assert api.sent[-1].method == "sendPhoto"
