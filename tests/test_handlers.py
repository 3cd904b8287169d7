"""Chat commands end to end: real updates through the real dispatcher and the stand-in API."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain import Post
from bot.ingest import Matcher
from bot.storage import Storage
from handlers.subscriptions import MAX_SUBSCRIPTIONS
from tests.botapi import FakeBotAPI
from tests.conftest import USER, Chat


async def test_start_registers_and_explains(chat: Chat, storage: Storage) -> None:
    reply = await chat.say("/start")
    assert "Dozor" in reply
    assert "/subscribe" in reply
    subscriber = await storage.get_subscriber(USER)
    assert subscriber is not None
    assert subscriber.active


async def test_subscribe_list_unsubscribe(chat: Chat, matcher: Matcher) -> None:
    await chat.say("/start")
    reply = await chat.say("/subscribe Oreshnik")
    assert "Subscribed" in reply
    assert "Oreshnik" in reply
    hits = await matcher.find("The Oreshnik is here")
    assert [h.subscription.query for h in hits] == ["Oreshnik"]
    assert "already subscribed" in await chat.say("/subscribe Oreshnik")
    await chat.say('/subscribe "INF Treaty" OR РСМД')
    listing = await chat.say("/list")
    assert "1. <code>Oreshnik</code>" in listing
    assert "2. <code>&quot;INF Treaty&quot; OR РСМД</code>" in listing or (
        '2. <code>"INF Treaty" OR РСМД</code>' in listing
    )
    assert "Unsubscribed" in await chat.say("/unsubscribe 1")
    assert await matcher.find("The Oreshnik is here") == []
    assert "Unsubscribed" in await chat.say('/unsubscribe "INF Treaty" OR РСМД')
    assert "no saved queries" in await chat.say("/list")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/subscribe", "/subscribe Oreshnik"),
        ("/subscribe    ", "/subscribe Oreshnik"),
        ('/subscribe "Oreshnik', "never closed"),
        ("/subscribe Oreshnik OR", "OR needs something to search for after"),
        ("/subscribe OR Oreshnik", "OR needs something to search for before"),
        ('/subscribe "!!!"', "no letters or digits"),
        ("/subscribe " + "x" * 600, "longer than 500"),
        ("/subscribe " + " ".join(f"w{n}" for n in range(60)), "more than 50 terms"),
        ("/unsubscribe", "/unsubscribe 1"),
        ("/unsubscribe 7", "no query"),
        ("/unsubscribe <b>nope", "&lt;b&gt;nope"),
        ("/subscribe Oreshnik & co", "&amp; has no letters or digits"),
    ],
)
async def test_bad_input_gets_a_clear_answer(chat: Chat, command: str, expected: str) -> None:
    reply = await chat.say(command)
    assert expected in reply


async def test_malformed_query_reply_shows_a_correct_example(chat: Chat) -> None:
    reply = await chat.say('/subscribe "unclosed')
    assert "at character 1" in reply
    assert "/subscribe Oreshnik OR &quot;INF Treaty&quot;" in reply or (
        '/subscribe Oreshnik OR "INF Treaty"' in reply
    )


async def test_hostile_query_is_escaped_in_replies(chat: Chat) -> None:
    reply = await chat.say("/subscribe <script>alert(1)</script> co")
    assert "<script>" not in reply
    assert "&lt;script&gt;" in reply
    assert "&lt;script&gt;" in await chat.say("/list")


async def test_unknown_command_and_plain_text(chat: Chat) -> None:
    assert "don't know the command <code>/frobnicate</code>" in await chat.say("/frobnicate now")
    assert "/help" in await chat.say("hello there")


async def test_help(chat: Chat) -> None:
    reply = await chat.say("/help")
    assert "/subscribe" in reply
    assert "/unsubscribe" in reply
    assert "/list" in reply


async def test_subscription_limit(chat: Chat, storage: Storage) -> None:
    await storage.upsert_subscriber(USER, "heavy user")
    for n in range(MAX_SUBSCRIPTIONS):
        await storage.add_subscription(USER, f"term{n}")
    reply = await chat.say("/subscribe one-more")
    assert "the most one chat can keep" in reply
    assert len(await storage.subscriptions_of(USER)) == MAX_SUBSCRIPTIONS


async def test_group_chat_subscribes_as_a_chat(
    storage: Storage, api: FakeBotAPI, chat: Chat
) -> None:
    group = Chat(api, chat_id=-100123, chat_type="supergroup")
    api.set_member(-100123, USER, "administrator")  # only a group's administrators subscribe it
    reply = await group.say("/subscribe@dozor_test_bot Iskander")
    assert "Subscribed" in reply
    assert [s.query for s in await storage.subscriptions_of(-100123)] == ["Iskander"]


async def test_search_finds_stored_posts_in_any_form(chat: Chat, storage: Storage) -> None:
    posts = [
        ("1", "Пуск «Орешника» <b>с полигона</b> & Капустин Яр"),
        ("2", "Садоводам: орешник (лещину) обрезают осенью"),
        ("3", "Weather today"),
    ]
    for post_id, text in posts:
        post = Post(
            "jsonl",
            "milinfo",
            post_id,
            datetime(2026, 11, 20, tzinfo=UTC),
            text,
            f"https://t.me/milinfo/{post_id}",
        )
        await storage.save_post(post, [])
    reply = await chat.say("/search Oreshnik -лещина")
    assert "1 post matches" in reply
    assert "<b>Орешника</b>" in reply
    assert "&lt;b&gt;с полигона&lt;/b&gt; &amp;" in reply
    assert 'href="https://t.me/milinfo/1"' in reply
    assert "No stored post matches" in await chat.say("/search Burevestnik")
    assert "never closed" in await chat.say("/search (Oreshnik")
    assert "/search Oreshnik" in await chat.say("/search")
