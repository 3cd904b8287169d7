"""The pacer's decisions on a fake clock: fairness between chats, priorities, spacing, memory."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import Counter

import pytest

from bot.delivery.sender import (
    FAIRNESS_MEMORY,
    GLOBAL_HEADROOM,
    GLOBAL_RATE,
    REPLY_RUN,
    STALL_FORGET,
    STALL_MARGIN_MAX,
    Pacer,
    Priority,
    SlotSchedule,
)

REPLY, BULK = Priority.REPLY, Priority.BULK


class Clock:
    """A fake clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def schedule(
    interval: float = 0.1, private: float = 1.0, group: float = 3.0, window: int = 30
) -> SlotSchedule[str]:
    return SlotSchedule(
        interval=interval, private_interval=private, group_interval=group, window=window
    )


def drain(
    slots: SlotSchedule[str], clock: Clock, count: int | None = None
) -> list[tuple[float, int, str]]:
    """Take slots as they fall due, moving the clock; (moment, chat, ticket) of each grant."""
    grants: list[tuple[float, int, str]] = []
    while len(slots) and (count is None or len(grants) < count):
        taken = slots.take(clock.now)
        if isinstance(taken, tuple):
            grants.append((clock.now, *taken))
        else:
            assert 0 < taken < math.inf
            clock.now += taken
    return grants


def test_a_bystander_goes_ahead_of_a_flood_of_many_chats() -> None:
    clock = Clock()
    slots = schedule()
    flooders = range(1, 31)
    for chat in flooders:
        for n in range(20):
            slots.add(chat, REPLY, f"{chat}/{n}", clock.now)
    # 30 chats at 10 slots/s and 1/s each: every chat once, in the order they wrote, then again.
    first = drain(slots, clock, 45)
    assert [chat for _, chat, _ in first[:30]] == list(flooders)
    assert [chat for _, chat, _ in first[30:45]] == list(flooders)[:15]
    slots.add(999, REPLY, "bystander", clock.now)  # 555 replies wait ahead of it
    (_, chat, ticket), *_ = drain(slots, clock, 1)
    assert (chat, ticket) == (999, "bystander")
    # The flood carries on round-robin where it left off, each chat's replies in order.
    rest = drain(slots, clock)
    assert [chat for _, chat, _ in rest[:15]] == list(flooders)[15:]
    for chat in flooders:
        mine = [ticket for _, c, ticket in first + rest if c == chat]
        assert mine == [f"{chat}/{n}" for n in range(20)]


def test_a_chat_served_less_recently_goes_first() -> None:
    clock = Clock()
    slots = schedule(private=0.0)
    for chat in (1, 2, 3):
        slots.add(chat, REPLY, f"{chat}a", clock.now)
    drain(slots, clock)  # served in the order 1, 2, 3
    clock.now += 1
    for chat in (3, 2, 1):  # now they write in the opposite order
        slots.add(chat, REPLY, f"{chat}b", clock.now)
    slots.add(4, REPLY, "4a", clock.now)  # never served: first of all
    assert [ticket for _, _, ticket in drain(slots, clock)] == ["4a", "1b", "2b", "3b"]


def test_service_long_ago_is_forgotten() -> None:
    clock = Clock()
    slots = schedule(private=0.0)
    slots.add(1, REPLY, "1a", clock.now)
    drain(slots, clock)
    clock.now += FAIRNESS_MEMORY + 1
    slots.add(1, REPLY, "1b", clock.now)
    slots.add(2, REPLY, "2a", clock.now)
    # Chat 1 was served over a minute ago: it ranks as never served, by arrival.
    assert [ticket for _, _, ticket in drain(slots, clock)] == ["1b", "2a"]


def test_replies_go_before_bulk_and_each_chat_keeps_its_order() -> None:
    clock = Clock()
    slots = schedule(private=0.0, group=0.0)
    for n in range(3):
        slots.add(7, BULK, f"alert{n}", clock.now)
    slots.add(8, BULK, "alert-8", clock.now)
    slots.add(7, REPLY, "reply-7", clock.now)  # jumps the queue of its own chat too
    slots.add(9, REPLY, "reply-9", clock.now)
    order = [ticket for _, _, ticket in drain(slots, clock)]
    assert order[:2] == ["reply-7", "reply-9"]
    assert [t for t in order if t.startswith("alert") and t != "alert-8"] == [
        "alert0",
        "alert1",
        "alert2",
    ]


def test_a_flood_of_commands_slows_alerts_but_never_stops_them() -> None:
    clock = Clock()
    slots = schedule(private=0.0, group=0.0)
    for chat in range(1, 11):
        slots.add(chat, BULK, f"alert-{chat}", clock.now)
    for chat in range(100, 400):  # far more replies than slots
        slots.add(chat, REPLY, f"reply-{chat}", clock.now)
    order = [ticket for _, _, ticket in drain(slots, clock, 40)]
    assert order[:REPLY_RUN] == ["reply-100", "reply-101", "reply-102"]  # replies first...
    alerts = [ticket for ticket in order if ticket.startswith("alert")]
    assert len(alerts) == 10  # ...but every fourth slot goes to a waiting alert
    assert all(order[n].startswith("alert") for n in range(REPLY_RUN, 40, REPLY_RUN + 1))


def test_spacing_holds_overall_and_per_chat() -> None:
    clock = Clock()
    slots = schedule(interval=0.05, private=1.0, group=3.0)
    chats = [1, 2, 3, -10, -11]
    for chat, n in itertools.product(chats, range(6)):
        slots.add(chat, BULK, f"{chat}/{n}", clock.now)
    grants = drain(slots, clock)
    assert len(grants) == 30
    moments = [moment for moment, _, _ in grants]
    assert all(b - a >= 0.05 - 1e-9 for a, b in itertools.pairwise(moments))
    for chat in chats:
        own = [moment for moment, c, _ in grants if c == chat]
        gap = 1.0 if chat > 0 else 3.0
        assert all(b - a >= gap - 1e-9 for a, b in itertools.pairwise(own))


def _many_chats_waiting(count: int) -> tuple[Clock, SlotSchedule[str]]:
    """A slot every 0.1 s, no 11 within a second, and `count` chats with a message each."""
    clock = Clock()
    slots = schedule(interval=0.1, private=0.0, window=10)
    for n in range(count):
        slots.add(n + 1, BULK, str(n), clock.now)
    return clock, slots


def _take_late(slots: SlotSchedule[str], clock: Clock, late: float) -> float:
    """Take the next slot `late` seconds after it falls due; the moment it was granted."""
    taken = slots.take(clock.now)
    while not isinstance(taken, tuple):
        clock.now += taken + late
        taken = slots.take(clock.now)
    return clock.now


def _spans(moments: list[float], window: int) -> list[float]:
    """How long each run of window + 1 consecutive slots lasted."""
    return [b - a for a, b in zip(moments, moments[window:], strict=False)]


def test_late_grants_are_caught_up_within_the_window() -> None:
    clock, slots = _many_chats_waiting(60)
    # Every grant 4 ms late, as timers are: the grid is kept; the window, which counts from
    # the moments slots were actually granted and widens by the lateness seen, costs a few ms
    # in all (restarting the spacing at each grant would cost 4 ms a slot).
    moments = [_take_late(slots, clock, 0.004) for _ in range(20)]
    assert 1.9 < moments[-1] - moments[0] < 1.9 + 4 * 0.004
    assert slots.margin == pytest.approx(0.004)
    # One 150 ms late (a busy event loop): the window widens by the stall (the same stall
    # could hold a message up on its way out), so the slots missed are not caught up ...
    moments.append(_take_late(slots, clock, 0.15))
    assert slots.margin == pytest.approx(0.15)
    moments += [_take_late(slots, clock, 0.0) for _ in range(12)]
    assert min(_spans(moments, 10)) >= 1.0 - 1e-9
    assert min(_spans(moments[20:], 10)) >= 1.15 - 1.2 * STALL_FORGET
    # ... and the widening is forgotten at STALL_FORGET seconds a second.
    assert slots.margin == pytest.approx(0.15 - (clock.now - moments[20]) * STALL_FORGET)


def test_after_a_long_stall_missed_slots_are_not_made_up_and_the_pace_eases() -> None:
    clock, slots = _many_chats_waiting(200)
    moments = [_take_late(slots, clock, 0.0) for _ in range(15)]
    assert slots.margin == 0.0
    clock.now += 2.0  # the loop was stuck for 2 s
    moments += [_take_late(slots, clock, 0.0) for _ in range(25)]
    after = moments[15:]
    # At most three intervals' worth is caught up (CATCH_UP_LAG), half an interval apart ...
    assert [round(b - a, 6) for a, b in itertools.pairwise(after[:8])] == [0.05] * 6 + [0.1]
    # ... the window widens, at most by STALL_MARGIN_MAX: 11 slots span 1.5 s, not 1 s ...
    assert min(_spans(moments, 10)) >= 1.0 - 1e-9
    assert after[-1] - after[-11] > 1.0 + STALL_MARGIN_MAX - 2.5 * STALL_FORGET
    # ... and the margin is forgotten as calm slots go by: the grid's pace again.
    moments += [_take_late(slots, clock, 0.0) for _ in range(150)]
    assert slots.margin == 0.0
    assert moments[-1] - moments[-11] == pytest.approx(1.0)


def test_the_window_counts_from_when_a_message_left() -> None:
    clock, slots = _many_chats_waiting(30)
    granted = slots.take(clock.now)
    assert isinstance(granted, tuple)
    # Its sender was held up for 80 ms before the message left; meanwhile others were granted.
    slots.sent(granted[1], clock.now + 0.08)
    moments = [clock.now] + [_take_late(slots, clock, 0.0) for _ in range(10)]
    # The 11th slot waits for a full second after the first message actually left.
    assert moments[10] - moments[0] == pytest.approx(1.08)
    slots.sent("not granted lately", clock.now)  # unknown tickets are ignored


def test_a_sender_that_gave_up_costs_no_slot() -> None:
    clock = Clock()
    slots = schedule()
    slots.add(1, REPLY, "gone", clock.now)
    slots.add(2, REPLY, "cancelled", clock.now)
    slots.add(3, REPLY, "kept", clock.now)
    assert slots.remove(2, "cancelled", clock.now)
    assert not slots.remove(2, "cancelled", clock.now)
    taken = slots.take(clock.now, alive=lambda ticket: ticket != "gone")
    assert taken == (3, "kept")  # at once: neither the dead nor the withdrawn one used it
    assert len(slots) == 0


def test_holds_for_one_chat_and_for_all() -> None:
    clock = Clock()
    slots = schedule(interval=0.01, private=0.0)
    slots.hold(1, clock.now + 5, clock.now)
    slots.add(1, REPLY, "held", clock.now)
    slots.add(2, BULK, "free", clock.now)
    assert [(m - 100.0, t) for m, _, t in drain(slots, clock)] == [(0.0, "free"), (5.0, "held")]
    assert slots.free_at(1) == pytest.approx(105.0)
    slots.hold(None, clock.now + 2, clock.now)
    slots.add(3, REPLY, "after the pause", clock.now)
    assert slots.take(clock.now) == pytest.approx(2.0)


def test_memory_follows_the_chats_active_lately() -> None:
    clock = Clock()
    slots = schedule(interval=0.01, private=1.0)
    # A million-user day in miniature: 50,000 distinct chats, one message each, 100 a second.
    for chat in range(1, 50_001):
        slots.add(chat, REPLY, "hello", clock.now)
        assert slots.take(clock.now) == (chat, "hello")
        clock.now += 0.01
    # Only the last minute's chats are remembered (plus the few not yet looked at).
    assert slots.chats <= FAIRNESS_MEMORY / 0.01 + 10
    clock.now += FAIRNESS_MEMORY + 1
    for chat in range(-1, -10_001, -1):  # later traffic prunes the old state as it goes
        slots.add(chat, REPLY, "hi", clock.now)
        assert slots.take(clock.now) == (chat, "hi")
        clock.now += 0.01
    assert slots.chats <= 10_000


def test_many_withdrawals_do_not_pile_up() -> None:
    clock = Clock()
    slots = schedule()
    slots.add(1, REPLY, "stays", clock.now)
    for n in range(10_000):  # a reply is queued and given up, again and again
        slots.add(1, REPLY, f"t{n}", clock.now)
        slots.remove(1, f"t{n}", clock.now)
    assert len(slots) == 1
    # Stale heap entries are compacted away, not kept for each re-filing.
    assert len(slots._free) + len(slots._spaced) <= 4 * slots.chats + 64
    assert slots.take(clock.now) == (1, "stays")


async def test_pacer_grants_the_limit_less_the_headroom() -> None:
    pacer = Pacer()
    assert pacer.rate == GLOBAL_RATE  # Telegram's limit, as configured (SEND_RATE)
    assert pacer.pace == pytest.approx(GLOBAL_RATE * GLOBAL_HEADROOM)
    assert Pacer(rate=10, headroom=1.0).pace == pytest.approx(10)
    with pytest.raises(ValueError, match="headroom"):
        Pacer(headroom=1.5)


async def test_pacer_serves_a_bystander_and_forgets_a_cancelled_sender() -> None:
    pacer = Pacer(rate=200, headroom=1.0, private_interval=0.1)
    order: list[int] = []

    async def send(chat_id: int) -> None:
        await pacer.acquire(chat_id, REPLY)
        order.append(chat_id)

    flood = [asyncio.create_task(send(chat)) for chat in (1, 2) for _ in range(10)]
    await asyncio.sleep(0)  # all queued
    doomed = asyncio.create_task(send(3))
    await asyncio.sleep(0)
    doomed.cancel()
    bystander = asyncio.create_task(send(4))
    await asyncio.wait_for(asyncio.gather(*flood, bystander), 10)
    assert order.index(4) < 5  # behind at most a reply or two of each flooding chat
    assert 3 not in order
    assert Counter(order) == {1: 10, 2: 10, 4: 1}
    assert pacer.waiting == 0
