"""Replies Telegram would refuse and inputs that broke handlers: every case gets an answer.

The stand-in Bot API refuses what Telegram refuses (over 4096 UTF-16 units after entity
parsing, broken HTML), so a reply it accepted is a reply the user would have seen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiogram import Bot
from aiogram.types import ErrorEvent, Update

from bot.config import Settings
from bot.domain import Post
from bot.i18n import Catalog
from bot.ingest import Matcher
from bot.storage import Storage, TooManySubscriptions
from handlers import search as search_module
from handlers.errors import on_error
from handlers.subscriptions import MAX_SUBSCRIPTIONS
from tests.botapi import FakeBotAPI, SentMessage, utf16_len
from tests.conftest import USER, Chat, polling

BYSTANDER = 502


@pytest.fixture
async def admin_chat(
    storage: Storage, matcher: Matcher, api: FakeBotAPI, bot: Bot
) -> AsyncIterator[Chat]:
    """The dispatcher with USER as an administrator (for /sources)."""
    settings = Settings(_env_file=None, admin_ids=str(USER))  # type: ignore[call-arg]
    async with polling(storage, matcher, bot, settings):
        yield Chat(api)


async def _replies_until(api: FakeBotAPI, chat_id: int, marker: str) -> list[SentMessage]:
    """Every reply to a chat up to the one containing `marker` (the end of a long answer)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while loop.time() < deadline:
        replies = api.sent_to(chat_id)
        if any(marker in reply.text for reply in replies):
            return replies
        if api.rejected:
            pytest.fail(f"the stand-in refused a reply: {api.rejected[-1].description}")
        await asyncio.sleep(0.02)
    pytest.fail(f"no reply containing {marker!r}; got {api.sent_to(chat_id)}")


def _within_limits(replies: list[SentMessage]) -> None:
    for reply in replies:
        assert utf16_len(reply.visible_text) <= 4096


# --- 8. the query limit --------------------------------------------------------------------


async def test_the_query_limit_holds_against_concurrent_subscribes(storage: Storage) -> None:
    await storage.upsert_subscriber(USER, "reader")
    results = await asyncio.gather(
        *(storage.add_subscription(USER, f"q{n}", limit=MAX_SUBSCRIPTIONS) for n in range(500)),
        return_exceptions=True,
    )
    assert len(await storage.subscriptions_of(USER)) == MAX_SUBSCRIPTIONS
    refused = [r for r in results if isinstance(r, TooManySubscriptions)]
    assert len(refused) == 500 - MAX_SUBSCRIPTIONS
    # A duplicate at the limit is still "already subscribed", not "too many".
    assert await storage.add_subscription(USER, "q0", limit=MAX_SUBSCRIPTIONS) is None


async def test_subscribing_past_the_limit_is_refused_with_a_reason(
    chat: Chat, storage: Storage
) -> None:
    await chat.say("/start")
    for n in range(MAX_SUBSCRIPTIONS):
        await storage.add_subscription(USER, f"query{n}")
    reply = await chat.say("/subscribe Oreshnik")
    assert f"already have {MAX_SUBSCRIPTIONS} queries" in reply
    assert len(await storage.subscriptions_of(USER)) == MAX_SUBSCRIPTIONS


# --- 10. replies within Telegram's limits --------------------------------------------------


# /list of a hundred long queries: paged with buttons, each page within the limits
# (tests/test_subscriptions_ui.py, test_a_page_of_long_hostile_queries_fits_one_message).


async def test_sources_with_many_long_failures_arrive_within_limits(
    admin_chat: Chat, storage: Storage, api: FakeBotAPI
) -> None:
    for n in range(300):
        source_id = await storage.ensure_source(f"rss:https://feeds{n}.example/<rss>&x", "rss")
        for _ in range(3):
            await storage.record_source_error(source_id, "<html><b>502</b> " + "💥 broken " * 60)
    api.push_message(USER, "/sources", user_id=USER)
    replies = await _replies_until(api, USER, "more sources")
    assert 1 < len(replies) <= 10  # a long report is split, and never a flood of messages
    _within_limits(replies)
    assert "feeds0.example/&lt;rss&gt;&amp;x" in replies[0].text
    assert "&lt;html&gt;" in replies[0].text


async def test_search_on_emoji_heavy_posts_stays_within_limits(
    chat: Chat, storage: Storage, api: FakeBotAPI
) -> None:
    now = datetime.now(UTC)
    for n in range(10):
        text = "🚀" * 100 + " Oreshnik " + "🚀" * 400  # each rocket: 2 UTF-16 units
        post = Post("jsonl", "c" + "😀" * 120, str(n), now - timedelta(minutes=n), text, None)
        await storage.save_post(post, [])
    api.push_message(USER, "/search Oreshnik", user_id=USER)
    replies = await _replies_until(api, USER, "Oreshnik")
    _within_limits(replies)
    shown = "\n".join(reply.visible_text for reply in replies)
    assert shown.count("Oreshnik") >= 2


# --- 11. odd input gets an answer, a failing handler too -----------------------------------


async def test_a_lone_surrogate_in_a_command_gets_an_answer(chat: Chat) -> None:
    reply = await chat.say("/subscribe \ud800")
    assert "can't use that query" in reply
    reply = await chat.say("/subscribe Орешник\udfff")  # the half character is dropped
    assert "Subscribed" in reply
    assert "Орешник" in reply


async def test_a_superscript_digit_is_not_a_number(chat: Chat) -> None:
    await chat.say("/start")
    reply = await chat.say("/unsubscribe ²")
    assert "You have no query" in reply


async def test_a_failing_handler_answers_and_logs_the_update(
    chat: Chat, storage: Storage, api: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    await chat.say("/start")
    await storage.close()  # every query now fails inside the handler
    update_id = api.push_message(USER, "/list", user_id=USER)
    replies = await api.wait_for_sent(2, chat_id=USER, timeout=20)
    assert "Something went wrong" in replies[-1].text
    assert f"update {update_id}" in replies[-1].text
    assert f"update {update_id} failed" in caplog.text


# --- 6. a slow search is bounded and holds nobody else up ----------------------------------


async def test_a_slow_search_stops_in_time_and_others_are_answered_meanwhile(
    storage: Storage,
    matcher: Matcher,
    api: FakeBotAPI,
    bot: Bot,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(search_module, "SEARCH_TIME_LIMIT", 1.0)
    now = datetime.now(UTC)
    filler = " ".join(["р мм рр Орешник"] * 1500)  # ~22,000 characters
    for n in range(1500):
        post = Post("jsonl", "c", str(n), now - timedelta(seconds=n), f"{n} {filler}", None)
        await storage.save_post(post, [])
    # Among the costliest regexes accepted: ~60 ms a post here, so 1,500 posts take far
    # longer than the limit on any machine.
    slow = "/search /(.{0,50}р){2}Ж/"
    async with polling(storage, matcher, bot):
        api.push_message(USER, slow, user_id=USER)
        api.push_message(BYSTANDER, "/help", user_id=BYSTANDER)
        api.push_message(USER, slow, user_id=USER)  # again, while the first one runs
        busy, searched = await api.wait_for_sent(2, chat_id=USER, timeout=60)
        (helped,) = api.sent_to(BYSTANDER)
    assert "still running" in busy.text
    assert "slow" in searched.text
    assert "stopped after" in searched.text
    assert helped.at < searched.at  # the bystander did not wait for the search


async def test_the_failure_notice_speaks_the_chats_chosen_language(
    storage: Storage, api: FakeBotAPI, bot: Bot
) -> None:
    # Telegram says English, the chat chose Russian with /lang: the notice is in Russian.
    await storage.upsert_subscriber(USER, "Tester", tg_language="en")
    await storage.update_subscriber(USER, language="ru")
    update = Update.model_validate(
        {
            "update_id": 7,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": USER, "type": "private"},
                "from": {"id": USER, "is_bot": False, "first_name": "T", "language_code": "en"},
                "text": "/list",
            },
        }
    )
    event = ErrorEvent(update=update, exception=RuntimeError("boom"))
    assert await on_error(event, bot, Catalog(strict=True), storage)
    (notice,) = await api.wait_for_sent(1, chat_id=USER)
    assert "Что-то пошло не так" in notice.text
    assert "обновление 7" in notice.text
