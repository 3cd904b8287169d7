"""When digests go out, as a running service sees it: the job runs every five minutes on a real
database, across clock changes, downtime, restarts and changed settings. The clock is the
test's: every run is given its `now`, nothing sleeps.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.digest import queue_digests
from bot.storage import Storage
from tests.test_digest import (
    CATALOG,
    EIGHT,
    THIN,
    _add_chat,
    _add_match,
    _digests,
    _distinct_text,
    _lines,
    _stored_time,
    _subscriber,
    _utc,
)
from tests.test_render import parse_telegram_html

STEP = timedelta(minutes=5)  # how often the service runs the digest job


async def _run(storage: Storage, now: datetime) -> int:
    """One run of the digest job at `now` (the service's own digest time: 08:00 UTC)."""
    return await queue_digests(storage, now, EIGHT, UTC, catalog=CATALOG)


async def _service(
    storage: Storage,
    start: datetime,
    end: datetime,
    *,
    every_tick: Callable[[datetime], Awaitable[None]] | None = None,
) -> list[datetime]:
    """Run the job every five minutes in [start, end); the moments it queued a digest."""
    queued_at = []
    now = start
    while now < end:
        if every_tick is not None:
            await every_tick(now)
        queued = await _run(storage, now)
        assert queued in (0, 1)
        if queued:
            queued_at.append(now)
        now += STEP
    return queued_at


# --- due times across zones and clock changes ----------------------------------------------


@pytest.mark.parametrize(
    ("zone", "at", "first_day", "slots"),
    [
        # The chat's zone and digest time, the first of three days, and when (UTC) on each
        # of them its digest is due: one a local day.
        # Berlin puts its clocks forward on 29 March 2026 at 01:00 UTC (02:00 → 03:00) ...
        ("Europe/Berlin", "08:00", "2026-03-28", "07:00 06:00 06:00"),
        # ... when 02:30 does not exist: the digest goes when the clock jumps past it.
        ("Europe/Berlin", "02:30", "2026-03-28", "01:30 01:00 00:30"),
        # It puts them back on 25 October 2026 at 01:00 UTC (03:00 → 02:00) ...
        ("Europe/Berlin", "08:00", "2026-10-24", "06:00 07:00 07:00"),
        # ... when 02:30 comes twice (00:30 and 01:30 UTC): the first one counts.
        ("Europe/Berlin", "02:30", "2026-10-24", "00:30 00:30 01:30"),
        # New York enters summer time on 8 March 2026 at 07:00 UTC (02:00 → 03:00) ...
        ("America/New_York", "08:00", "2026-03-07", "13:00 12:00 12:00"),
        ("America/New_York", "02:30", "2026-03-07", "07:30 07:00 06:30"),
        # ... and leaves it on 1 November 2026 at 06:00 UTC (02:00 → 01:00).
        ("America/New_York", "08:00", "2026-10-31", "12:00 13:00 13:00"),
        ("America/New_York", "01:30", "2026-10-31", "05:30 05:30 06:30"),
        # Zones without summer time, one 5:45 ahead of UTC.
        ("Asia/Kathmandu", "12:00", "2026-11-19", "06:15 06:15 06:15"),
        ("Europe/Moscow", "07:30", "2026-11-19", "04:30 04:30 04:30"),
    ],
)
async def test_a_service_running_every_five_minutes_sends_one_digest_a_local_day(
    storage: Storage, zone: str, at: str, first_day: str, slots: str
) -> None:
    day = datetime.fromisoformat(first_day).replace(tzinfo=UTC)
    expected = [
        day + timedelta(days=n, hours=clock.hour, minutes=clock.minute)
        for n, clock in enumerate(time.fromisoformat(slot) for slot in slots.split())
    ]
    start, end = day, day + timedelta(days=3)
    (query,) = await _add_chat(
        storage,
        1,
        "Oreshnik",
        created=start,
        timezone=zone,
        digest_time=at,
        digest_chart=False,
    )
    await _add_match(storage, [query], "Oreshnik at midnight", start)

    async def one_post_a_day(now: datetime) -> None:
        # And at 15:00 UTC each day: between two slots above, exactly one.
        if now.time() == time(15):
            await _add_match(storage, [query], f"Oreshnik {_distinct_text(now.day)}", now)

    assert await _service(storage, start, end, every_tick=one_post_a_day) == expected
    texts = (await _digests(storage))[1]
    assert len(texts) == len(expected)
    for text, slot in zip(texts, expected, strict=True):
        local = slot.astimezone(ZoneInfo(zone))
        intro = _lines(text)[2]
        pattern = rf".* – {local.day} {local:%b %H:%M} \S+ · 1 matched post, 1 story"
        assert re.fullmatch(pattern, intro), intro
    subscriber = await _subscriber(storage, 1)
    assert subscriber.last_digest_at == expected[-1]
    assert subscriber.next_digest_at is not None
    assert subscriber.next_digest_at > end - STEP


# --- downtime, restarts, changed settings ----------------------------------------------------


@pytest.mark.parametrize("restarted", [False, True])
async def test_digests_missed_while_down_come_once_late_covering_every_day(
    storage: Storage, restarted: bool
) -> None:
    (query,) = await _add_chat(storage, 1, "Oreshnik", created=_utc(2026, 11, 15))
    links = [
        await _add_match(storage, [query], f"Oreshnik {_distinct_text(0)}", _utc(2026, 11, 15, 12))
    ]
    assert await _run(storage, _utc(2026, 11, 16, 8)) == 1
    # Then the service is down for three days while posts keep being matched.
    for day in (16, 17, 18):
        links.append(
            await _add_match(
                storage, [query], f"Oreshnik {_distinct_text(day)}", _utc(2026, 11, day, 12)
            )
        )
    if restarted:  # the service starts again (its digest time may have changed meanwhile)
        await storage.reschedule_all_digests()
    back = _utc(2026, 11, 19, 10)
    assert await _run(storage, back) == 1
    (_, late) = (await _digests(storage))[1]
    lines = _lines(late)
    assert lines[0] == f"📰 Digest for November 16{THIN}–{THIN}19"
    assert lines[2] == "16 Nov 08:00 – 19 Nov 10:00 UTC · 3 matched posts, 3 stories"
    assert lines[4] == "🔎 Oreshnik — 3 posts"
    assert sorted(parse_telegram_html(late).links) == sorted(links[1:])

    # The rest of the day: nothing more; the next morning, the next digest.
    links.append(
        await _add_match(
            storage, [query], f"Oreshnik {_distinct_text(19)}", _utc(2026, 11, 19, 12)
        )
    )
    assert await _service(storage, back + STEP, _utc(2026, 11, 20, 8, 5)) == [
        _utc(2026, 11, 20, 8)
    ]
    (_, _, next_day) = (await _digests(storage))[1]
    assert _lines(next_day)[2] == "19 Nov 10:00 – 20 Nov 08:00 UTC · 1 matched post, 1 story"


@pytest.mark.parametrize(
    ("zone", "at", "slot", "next_slot"),
    [
        ("UTC", "08:00", "2026-11-20 08:00", "2026-11-21 08:00"),
        # 02:30 comes twice in Berlin on 25 October: a restart between must not send again.
        ("Europe/Berlin", "02:30", "2026-10-25 00:30", "2026-10-26 01:30"),
        # 02:30 is skipped in New York on 8 March: the slot is the jump, 03:00 EDT.
        ("America/New_York", "02:30", "2026-03-08 07:00", "2026-03-09 06:30"),
    ],
)
async def test_a_restart_after_a_digest_does_not_send_it_again(
    storage: Storage, zone: str, at: str, slot: str, next_slot: str
) -> None:
    sent = datetime.fromisoformat(slot).replace(tzinfo=UTC)
    following = datetime.fromisoformat(next_slot).replace(tzinfo=UTC)
    (query,) = await _add_chat(
        storage, 1, "Oreshnik", created=sent - timedelta(days=3), timezone=zone, digest_time=at
    )
    await _add_match(storage, [query], f"Oreshnik {_distinct_text(1)}", sent - timedelta(hours=2))
    assert await _run(storage, sent) == 1
    await _add_match(
        storage, [query], f"Oreshnik {_distinct_text(2)}", sent + timedelta(minutes=30)
    )
    for later in (timedelta(minutes=1), timedelta(hours=1), following - sent - STEP):
        await storage.reschedule_all_digests()  # the service restarts
        assert (await _subscriber(storage, 1)).next_digest_at is None
        assert await _run(storage, sent + later) == 0
        assert (await _subscriber(storage, 1)).next_digest_at == following
    assert await _run(storage, following) == 1
    assert len((await _digests(storage))[1]) == 2


async def test_changing_the_digest_time_or_zone_works_the_due_time_out_again(
    storage: Storage,
) -> None:
    (query,) = await _add_chat(storage, 1, "Oreshnik", created=_utc(2026, 11, 19))
    await _add_match(storage, [query], f"Oreshnik {_distinct_text(1)}", _utc(2026, 11, 19, 12))
    assert await _run(storage, _utc(2026, 11, 20, 8)) == 1
    assert (await _subscriber(storage, 1)).next_digest_at == _utc(2026, 11, 21, 8)

    async def stored_due_time() -> str:
        row = await storage._one("SELECT next_digest_at FROM subscribers WHERE chat_id = 1")
        assert row is not None
        return str(row["next_digest_at"])

    # Other settings leave the due time alone.
    await storage.update_subscriber(1, link_previews=True, digest_chart=False)
    assert await stored_due_time() == _stored_time(_utc(2026, 11, 21, 8))

    # 20:00 the same day: '' (work it out), then worked out by the next run.
    subscriber = await storage.update_subscriber(1, digest_time="20:00")
    assert subscriber is not None
    assert subscriber.next_digest_at is None
    assert await stored_due_time() == ""
    assert await _run(storage, _utc(2026, 11, 20, 9)) == 0
    assert await stored_due_time() == _stored_time(_utc(2026, 11, 20, 20))

    # 20:00 in Moscow is 17:00 UTC.
    await storage.update_subscriber(1, timezone="Europe/Moscow")
    assert await stored_due_time() == ""
    await _add_match(storage, [query], f"Oreshnik {_distinct_text(2)}", _utc(2026, 11, 20, 12))
    assert await _service(storage, _utc(2026, 11, 20, 9, 5), _utc(2026, 11, 21, 9)) == [
        _utc(2026, 11, 20, 17)
    ]

    # A digest turned off and on again: worked out again too.
    await storage.update_subscriber(1, digest_enabled=False)
    assert await stored_due_time() == ""


async def test_a_chat_with_its_digest_off_gets_none_but_its_mark_moves(storage: Storage) -> None:
    (query,) = await _add_chat(storage, 1, "Oreshnik", created=_utc(2026, 11, 18))
    await storage.update_subscriber(1, digest_enabled=False)
    for day in (18, 19):
        await _add_match(
            storage, [query], f"Oreshnik {_distinct_text(day)}", _utc(2026, 11, day, 12)
        )
    assert await _service(storage, _utc(2026, 11, 18, 14), _utc(2026, 11, 20, 9)) == []
    assert await _digests(storage) == {}
    assert (await _subscriber(storage, 1)).last_digest_at == _utc(2026, 11, 20, 8)
    # Turned on again, its first digest covers a day, not the whole time it was off.
    await storage.update_subscriber(1, digest_enabled=True)
    await _add_match(storage, [query], f"Oreshnik {_distinct_text(20)}", _utc(2026, 11, 20, 12))
    assert await _service(storage, _utc(2026, 11, 20, 9), _utc(2026, 11, 21, 9)) == [
        _utc(2026, 11, 21, 8)
    ]
    (text,) = (await _digests(storage))[1]
    assert _lines(text)[2] == "20 Nov 08:00 – 21 Nov 08:00 UTC · 1 matched post, 1 story"


# --- the job's one read --------------------------------------------------------------------


async def test_the_due_chats_are_read_through_the_index(storage: Storage) -> None:
    for chat_id in range(1, 51):
        await _add_chat(storage, chat_id, created=_utc(2026, 11, 1))
    statements: list[str] = []
    await storage._reader.set_trace_callback(statements.append)  # the SQL as run, values bound
    due = await storage.due_for_digest(_utc(2026, 11, 20, 8), 500)
    assert len(due) == 50
    (statement,) = [s for s in statements if "FROM subscribers" in s]
    plan = await storage._all(f"EXPLAIN QUERY PLAN {statement}")
    details = " | ".join(row["detail"] for row in plan)
    assert "USING INDEX subscribers_next_digest" in details, details
    assert "TEMP B-TREE" not in details, details  # read in the index's order, not sorted after
