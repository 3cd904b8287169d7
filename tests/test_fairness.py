"""One chat's flood never delays another chat's reply: the real dispatcher and pacer against the
stand-in Bot API, and the per-chat input throttle on a fake clock."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.types import CallbackQuery

from bot.app import build_dispatcher
from bot.config import Settings
from bot.delivery.sender import Pacer, install_pacer
from bot.i18n import Catalog
from bot.ingest import Matcher
from bot.storage import Storage
from handlers.start import help_text
from handlers.throttle import (
    BURST,
    EPISODE_GAP,
    MAX_IN_PROGRESS,
    InputThrottle,
    Verdict,
    install_throttle,
    throttle_of,
)
from tests.botapi import FakeBotAPI
from tests.conftest import dispatching

ENGLISH = Catalog(strict=True).texts("en")
HELP = help_text(ENGLISH)
SLOW_DOWN = ENGLISH("slow-down")
HANDLE, DROP, NOTIFY = Verdict.HANDLE, Verdict.DROP, Verdict.DROP_AND_NOTIFY


async def until(condition: Callable[[], bool], timeout: float = 60.0) -> None:  # noqa: ASYNC109
    """Wait for `condition` (checked every 20 ms); fail after a generous `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def dispatcher_for(storage: Storage, matcher: Matcher) -> tuple[Dispatcher, InputThrottle]:
    dispatcher = build_dispatcher(storage, matcher, Settings(_env_file=None))  # type: ignore[call-arg]
    (root,) = dispatcher.sub_routers
    throttle = throttle_of(root)
    assert throttle is not None
    return dispatcher, throttle


# ------------------------------------------------------------------ end to end

FLOODERS = 50
COMMANDS = 20
BYSTANDER = 9_000


async def test_a_flood_from_many_chats_does_not_hold_up_a_bystander(
    storage: Storage, matcher: Matcher, api: FakeBotAPI, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    pacer = install_pacer(bot, Pacer())  # Telegram's limits, as in production
    dispatcher, throttle = dispatcher_for(storage, matcher)
    flooders = [1_000 + n for n in range(FLOODERS)]
    for chat in flooders:
        for _ in range(COMMANDS):
            api.push_message(chat, "/list")
    async with dispatching(dispatcher, bot):
        # Each flooding chat has had a reply; the rest of the flood (~250 replies) is queued.
        await api.wait_for_sent(FLOODERS, timeout=60)
        sent_before = len(api.sent)
        api.push_message(BYSTANDER, "/list")
        (reply,) = await api.wait_for_sent(1, chat_id=BYSTANDER, timeout=60)
        # Then the whole flood drains: each chat gets its bound of replies and one notice.
        await api.wait_for_sent(FLOODERS * (MAX_IN_PROGRESS + 1) + 1, timeout=120)
        await until(lambda: throttle.in_progress == 0 and pacer.waiting == 0)

    assert "no saved queries" in reply.text
    position = api.sent.index(reply)
    # The next free slot or so, not after the ~250 replies that were waiting (~9 s at 28/s).
    assert position - sent_before <= 30
    assert len(api.sent) - position > len(api.sent) // 2  # most of the flood came after
    for chat in flooders:
        texts = [m.text for m in api.sent_to(chat)]
        assert texts.count(SLOW_DOWN) == 1, chat
        replies = [t for t in texts if t != SLOW_DOWN]
        assert 1 <= len(replies) <= MAX_IN_PROGRESS, chat
        assert all("no saved queries" in t for t in replies)
    assert len(api.sent_to(BYSTANDER)) == 1
    assert api.rejected == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_group_is_bounded_as_one_chat(
    storage: Storage, matcher: Matcher, api: FakeBotAPI, bot: Bot
) -> None:
    install_pacer(bot, Pacer(rate=1000, headroom=1.0, private_interval=0, group_interval=0))
    api.set_send_latency(0.2)  # replies take a while: the group's commands pile up
    dispatcher, throttle = dispatcher_for(storage, matcher)
    group, alone = -100_500, 42
    for n in range(8):  # two members take turns
        api.push_message(group, "/help@dozor_test_bot", user_id=11 + n % 2, chat_type="group")
    for _ in range(3):
        api.push_message(alone, "/help")
    async with dispatching(dispatcher, bot):
        await api.wait_for_sent(MAX_IN_PROGRESS + 1 + 3, timeout=30)
        await until(lambda: throttle.in_progress == 0)
    texts = [m.text for m in api.sent_to(group)]
    assert texts.count(HELP) == MAX_IN_PROGRESS
    assert texts.count(SLOW_DOWN) == 1
    assert [m.text for m in api.sent_to(alone)] == [HELP] * 3  # another chat, its own bound


def _press(number: int, chat_id: int) -> dict[str, Any]:
    user = {"id": chat_id, "is_bot": False, "first_name": "Tester"}
    message = {
        "message_id": 1,
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": "private", "first_name": "Tester"},
        "from": {"id": 4242, "is_bot": True, "first_name": "Dozor"},
        "text": "Results, page 1",
    }
    return {
        "callback_query": {
            "id": f"press-{number}",
            "from": user,
            "chat_instance": "1",
            "message": message,
            "data": "page:2",
        }
    }


async def test_button_presses_are_throttled_with_one_toast_and_all_settled(
    api: FakeBotAPI, bot: Bot
) -> None:
    release = asyncio.Event()
    router = Router()
    install_throttle(router)
    started: list[str] = []

    @router.callback_query()
    async def on_press(callback: CallbackQuery) -> None:
        started.append(callback.id)
        await release.wait()  # a slow page: presses pile up meanwhile
        await callback.answer("page 2")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    for number in range(9):
        api.push_update(_press(number, 501))

    def answers() -> list[str | None]:
        return [p.get("text") for m, p in api.calls if m == "answerCallbackQuery"]

    async with dispatching(dispatcher, bot):
        await until(lambda: len(started) == MAX_IN_PROGRESS and SLOW_DOWN in answers())
        release.set()
        await until(lambda: answers().count("page 2") == MAX_IN_PROGRESS)
    assert started == [f"press-{n}" for n in range(MAX_IN_PROGRESS)]
    # One toast says why; the other dropped presses are answered silently (no spinner left).
    dropped = 9 - MAX_IN_PROGRESS
    assert sorted(answers(), key=str) == sorted(
        ["page 2"] * MAX_IN_PROGRESS + [SLOW_DOWN] + [None] * (dropped - 1), key=str
    )


# ------------------------------------------------------------- the throttle itself


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_in_progress_bound_and_one_notice_per_episode() -> None:
    clock = Clock()
    throttle = InputThrottle(clock=clock)
    verdicts = [throttle.admit(7) for _ in range(20)]
    assert verdicts == [HANDLE] * MAX_IN_PROGRESS + [NOTIFY] + [DROP] * 14
    assert throttle.admit(8) is HANDLE  # another chat is not affected
    throttle.finish(7)
    clock.now += 1
    assert throttle.admit(7) is HANDLE  # one finished: room for one more
    assert throttle.admit(7) is DROP  # still the same episode: no second notice
    for _ in range(MAX_IN_PROGRESS):
        throttle.finish(7)
    clock.now += EPISODE_GAP + 1  # quiet for a while; a new flood is a new episode
    assert [throttle.admit(7) for _ in range(MAX_IN_PROGRESS + 2)] == (
        [HANDLE] * MAX_IN_PROGRESS + [NOTIFY, DROP]
    )


def test_a_chat_flooding_without_pause_is_told_once() -> None:
    clock = Clock()
    throttle = InputThrottle(clock=clock)
    notices = 0
    for _ in range(600):  # two commands a second for five minutes, each handled at once
        verdict = throttle.admit(7)
        notices += verdict is NOTIFY
        if verdict is HANDLE:
            throttle.finish(7)
        clock.now += 0.5
    assert notices == 1


def test_rate_bound_and_unhandled_updates_are_free() -> None:
    clock = Clock()
    throttle = InputThrottle(clock=clock, per_minute=30)
    for _ in range(BURST):  # a burst, each done before the next
        assert throttle.admit(7) is HANDLE
        throttle.finish(7)
    assert throttle.admit(7) is NOTIFY
    clock.now += 2.0  # one update every 2 s after the burst
    assert throttle.admit(7) is HANDLE
    throttle.finish(7)
    assert throttle.admit(7) is DROP
    # Group chatter no handler takes costs nothing.
    for _ in range(100):
        assert throttle.admit(-100) is HANDLE
        throttle.finish(-100, handled=False)


def test_throttle_memory_follows_the_chats_active_lately() -> None:
    clock = Clock()
    throttle = InputThrottle(clock=clock)
    for chat in range(1, 100_001):  # 100,000 distinct chats, 50 updates a second
        assert throttle.admit(chat) is HANDLE
        throttle.finish(chat)
        clock.now += 0.02
    assert len(throttle) <= 30 / 0.02 + 10  # about the last half-minute's chats
    stuck = throttle.admit(-1)  # a handler that never ends is kept, not forgotten
    assert stuck is HANDLE
    for chat in range(100_001, 110_001):
        throttle.admit(chat)
        throttle.finish(chat)
        clock.now += 0.02
    assert len(throttle) <= 30 / 0.02 + 10
    assert throttle.in_progress == 1
