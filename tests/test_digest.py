"""Daily digests: when a subscriber is due, how a digest is split, and what gets queued."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.delivery.render import MAX_MESSAGE, visible_length
from bot.digest import digest_due, latest_slot, queue_digests, render_digest
from bot.domain import DigestEntry, Post, Span, StoredPost, Subscriber
from bot.i18n import Catalog
from bot.storage import Storage
from bot.storage.sqlite import MatchRecord
from tests.test_render import HOSTILE_TEXTS, parse_telegram_html

CATALOG = Catalog(strict=True)
EN = CATALOG.texts("en")
RU = CATALOG.texts("ru")
MOSCOW = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
EIGHT = time(8, 0)


def _at(text: str) -> datetime:
    """`2026-11-20 07:59` as UTC; an explicit offset such as `+03:00` is kept."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type, misc]


# --- latest_slot -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "at", "zone", "slot"),
    [
        # now (UTC unless an offset is given), digest time, zone, expected slot (UTC)
        ("2026-11-20 07:59", "08:00", "UTC", "2026-11-19 08:00"),  # just before
        ("2026-11-20 08:00", "08:00", "UTC", "2026-11-20 08:00"),  # exactly at
        ("2026-11-20 08:01", "08:00", "UTC", "2026-11-20 08:00"),  # just after
        ("2026-11-20 23:59", "08:00", "UTC", "2026-11-20 08:00"),  # late evening
        ("2026-11-20 00:10", "23:30", "UTC", "2026-11-19 23:30"),  # across midnight
        ("2027-01-01 00:00", "23:59", "UTC", "2026-12-31 23:59"),  # across the new year
        ("2026-11-20 04:59", "08:00", "Europe/Moscow", "2026-11-19 05:00"),
        ("2026-11-20 05:00", "08:00", "Europe/Moscow", "2026-11-20 05:00"),
        ("2026-11-19 23:30", "02:00", "Europe/Moscow", "2026-11-19 23:00"),  # MSK date ahead
        ("2026-11-20 09:00+03:00", "08:00", "UTC", "2026-11-19 08:00"),  # now given in MSK
        ("2026-03-28 07:30", "08:00", "Europe/Berlin", "2026-03-28 07:00"),  # CET
        ("2026-03-29 05:30", "08:00", "Europe/Berlin", "2026-03-28 07:00"),  # CEST from today
        ("2026-03-29 06:00", "08:00", "Europe/Berlin", "2026-03-29 06:00"),
        ("2026-10-25 06:30", "08:00", "Europe/Berlin", "2026-10-24 06:00"),  # CET from today
        ("2026-10-25 07:00", "08:00", "Europe/Berlin", "2026-10-25 07:00"),
        # 02:30 happens twice on 25 October in Berlin, first at 00:30 UTC.
        ("2026-10-25 00:45", "02:30", "Europe/Berlin", "2026-10-25 00:30"),
        pytest.param("2026-10-25 01:15", "02:30", "Europe/Berlin", "2026-10-25 00:30"),
    ],
)
def test_latest_slot(now: str, at: str, zone: str, slot: str) -> None:
    assert latest_slot(_at(now), time.fromisoformat(at), ZoneInfo(zone)) == _at(slot)


def _every_five_minutes(start: datetime) -> list[datetime]:
    return [start + timedelta(minutes=m) for m in range(0, 26 * 60, 5)]


@pytest.mark.parametrize(
    "at",
    [
        EIGHT,
        time(0, 0),
        time(3, 30),
        pytest.param(time(2, 30)),  # a wall-clock time skipped or repeated
    ],
)
@pytest.mark.parametrize("day", [_utc(2026, 3, 28, 22), _utc(2026, 10, 24, 22)])
def test_latest_slot_is_never_in_the_future_nor_goes_back(at: time, day: datetime) -> None:
    previous = None
    for now in _every_five_minutes(day):
        slot = latest_slot(now, at, BERLIN)
        assert slot <= now, f"slot {slot} is after now {now}"
        assert now - slot < timedelta(hours=25)
        assert previous is None or slot >= previous, f"slot went back at {now}"
        previous = slot


# --- digest_due ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("created", "last", "now", "zone", "due"),
    [
        # Digest time 08:00. Times are UTC; `last` is when the previous digest went out.
        ("2026-11-19 10:00", None, "2026-11-20 07:59", "UTC", False),  # new, slot not reached
        ("2026-11-19 10:00", None, "2026-11-20 08:00", "UTC", True),  # new, at first slot
        ("2026-11-20 09:00", None, "2026-11-20 10:00", "UTC", False),  # joined after the slot
        ("2026-11-20 09:00", None, "2026-11-21 07:59", "UTC", False),
        ("2026-11-20 09:00", None, "2026-11-21 08:00", "UTC", True),  # ... due next morning
        ("2026-11-01 00:00", "2026-11-19 08:00:05", "2026-11-20 07:59", "UTC", False),
        ("2026-11-01 00:00", "2026-11-19 08:00:05", "2026-11-20 08:30", "UTC", True),
        ("2026-11-01 00:00", "2026-11-20 08:00:05", "2026-11-20 23:00", "UTC", False),
        ("2026-11-01 00:00", "2026-11-17 08:00:00", "2026-11-20 03:00", "UTC", True),  # was down
        ("2026-11-01 00:00", "2026-11-19 05:00:05", "2026-11-20 04:59", "Europe/Moscow", False),
        ("2026-11-01 00:00", "2026-11-19 05:00:05", "2026-11-20 05:00", "Europe/Moscow", True),
        ("2026-11-01 00:00", "2026-11-19 08:00:05", "2026-11-20 05:00", "UTC", False),
        ("2026-03-01 00:00", "2026-03-28 07:00:05", "2026-03-29 05:59", "Europe/Berlin", False),
        ("2026-03-01 00:00", "2026-03-28 07:00:05", "2026-03-29 06:00", "Europe/Berlin", True),
        ("2026-10-01 00:00", "2026-10-24 06:00:05", "2026-10-25 06:59", "Europe/Berlin", False),
        ("2026-10-01 00:00", "2026-10-24 06:00:05", "2026-10-25 07:00", "Europe/Berlin", True),
    ],
)
def test_digest_due(created: str, last: str | None, now: str, zone: str, due: bool) -> None:
    subscriber = Subscriber(1, "analyst", True, _at(created), _at(last) if last else None)
    assert digest_due(subscriber, _at(now), EIGHT, ZoneInfo(zone)) is due


def test_digest_at_a_skipped_time_is_not_due_twice() -> None:
    # 02:30 does not exist in Berlin on 29 March. The digest went out at 03:05 CEST
    # (01:05 UTC); a quarter of an hour later it must not be due again.
    subscriber = Subscriber(1, "analyst", True, _at("2026-03-01 00:00"), _at("2026-03-29 01:05"))
    assert not digest_due(subscriber, _at("2026-03-29 01:20"), time(2, 30), BERLIN)


# --- render_digest ---------------------------------------------------------------------------

SINCE = _utc(2026, 11, 19, 8)
UNTIL = _utc(2026, 11, 20, 8)


def _entry(
    n: int,
    text: str,
    queries: tuple[str, ...] = ("Oreshnik",),
    *,
    channel: str = "ch",
    url: str | None = "auto",
) -> DigestEntry:
    link = f"https://t.me/{channel}/{n}" if url == "auto" else url
    date = SINCE + timedelta(minutes=n)
    return DigestEntry(StoredPost(n, Post("jsonl", channel, str(n), date, text, link)), queries)


def _entry_links(parts: list[str]) -> list[str]:
    return [link for part in parts for link in parse_telegram_html(part).links]


def test_big_digest_is_split_into_valid_messages_with_every_entry_once() -> None:
    entries = [
        _entry(n, f"post {n} " + HOSTILE_TEXTS[n % len(HOSTILE_TEXTS)] + " Орешник" * 70)
        for n in range(200)
    ]
    assert all(len(e.post.post.text) >= 500 for e in entries)
    parts = render_digest(entries, SINCE, UNTIL, EN, UTC)
    assert len(parts) > 5
    for part in parts:
        shown = parse_telegram_html(part)  # valid HTML, ≤ 4096 visible units
        assert visible_length(shown.text) > MAX_MESSAGE // 2 or part is parts[-1]
    assert _entry_links(parts) == [f"https://t.me/ch/{n}" for n in range(200)]
    assert parse_telegram_html(parts[0]).text.startswith("📰 Digest: 200 matched posts, ")


def test_digest_shows_hostile_text_verbatim() -> None:
    entries = [
        _entry(n, text, (text,), channel=text[:20], url=None)
        for n, text in enumerate(HOSTILE_TEXTS)
    ]
    parts = render_digest(entries, SINCE, UNTIL, EN, UTC)
    shown = "\n\n".join(parse_telegram_html(part).text for part in parts)
    for text in HOSTILE_TEXTS:
        snippet = " ".join(text.split())
        assert f"{text[:20]} · " in shown
        assert f" — {text}\n{snippet}" in shown


def test_digest_entry_snippet_is_short_and_whitespace_folded() -> None:
    text = "Oreshnik\n\nlaunched   from\tKapustin Yar. " + "More words here. " * 100
    (part,) = render_digest([_entry(1, text)], SINCE, UNTIL, EN, UTC)
    lines = parse_telegram_html(part).text.split("\n")
    snippet = lines[-1]
    assert snippet.startswith("Oreshnik launched from Kapustin Yar. More words")
    assert snippet.endswith("…")
    assert visible_length(snippet) <= 220


@pytest.mark.parametrize("url", [None, "javascript:alert(1)", "https://x/" + "a" * 3000])
def test_digest_entry_without_a_safe_url_has_no_link(url: str | None) -> None:
    (part,) = render_digest([_entry(1, "Oreshnik", url=url)], SINCE, UNTIL, EN, UTC)
    shown = parse_telegram_html(part)
    assert shown.links == []
    assert "ch · 19 Nov 08:01 — Oreshnik\nOreshnik" in shown.text


def test_digest_times_are_in_the_chats_time_zone() -> None:
    (part,) = render_digest([_entry(30, "Oreshnik")], SINCE, UNTIL, EN, MOSCOW)
    shown = parse_telegram_html(part)
    assert shown.text.startswith("📰 Digest: 1 matched post, 19 Nov 11:00 – 20 Nov 11:00 MSK\n")
    assert "ch · 19 Nov 11:30 — Oreshnik" in shown.text


def test_entry_matched_by_many_long_queries_still_fits() -> None:
    # A chat may keep 100 queries of up to 500 characters; ten of them match this post.
    queries = tuple(f"q{n} " + "Oreshnik OR Орешник " * 24 for n in range(10))
    parts = render_digest([_entry(1, "Oreshnik Орешник", queries)], SINCE, UNTIL, EN, UTC)
    for part in parts:
        parse_telegram_html(part)


# --- queue_digests on a real database --------------------------------------------------------


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Storage]:
    storage = await Storage.open(tmp_path / "db.sqlite3")
    yield storage
    await storage.close()


async def _with_one_match(db: Storage) -> None:
    """Chat 1 has a query that matched a post; chat 2 talks to the bot but matched nothing."""
    await db.upsert_subscriber(1, "analyst")
    await db.upsert_subscriber(2, "quiet")
    subscription = await db.add_subscription(1, "Oreshnik")
    assert subscription is not None
    post = Post(
        "jsonl", "rybar", "77", datetime.now(UTC), "Oreshnik <launch> & more", "https://t.me/r/77"
    )
    match = MatchRecord(subscription.id, 1, "Oreshnik", (Span(0, 5),))
    await db.save_post(post, [match])


async def _digests(db: Storage, now: datetime) -> dict[int, list[str]]:
    by_chat: dict[int, list[str]] = {}
    for message in await db.pending_messages(now):
        if message.kind == "digest":
            assert message.text is not None
            by_chat.setdefault(message.chat_id, []).append(message.text)
    return by_chat


async def test_forced_digest_goes_to_chats_with_matches_only_once(db: Storage) -> None:
    await _with_one_match(db)
    now = datetime.now(UTC)
    assert await queue_digests(db, now, EIGHT, UTC, force=True) == 1
    digests = await _digests(db, datetime.now(UTC))
    assert list(digests) == [1]
    (text,) = digests[1]
    shown = parse_telegram_html(text)
    assert "📰 Digest: 1 matched post, " in shown.text
    assert "rybar · " in shown.text
    assert "Oreshnik <launch> & more" in shown.text
    assert shown.links == ["https://t.me/r/77"]
    subscriber = await db.get_subscriber(1)
    assert subscriber is not None
    assert subscriber.last_digest_at == now

    again = datetime.now(UTC)
    assert await queue_digests(db, again, EIGHT, UTC, force=True) == 0
    assert await _digests(db, datetime.now(UTC)) == digests


async def test_unforced_run_before_the_slot_queues_nothing(db: Storage) -> None:
    await _with_one_match(db)
    now = datetime.now(UTC)
    slot_in_an_hour = (now + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    assert await queue_digests(db, now, slot_in_an_hour, UTC) == 0
    assert await _digests(db, datetime.now(UTC)) == {}
    for chat_id in (1, 2):
        subscriber = await db.get_subscriber(chat_id)
        assert subscriber is not None
        assert subscriber.last_digest_at is None


async def test_unforced_run_after_the_slot_sends_once_and_moves_every_mark(db: Storage) -> None:
    await _with_one_match(db)
    # Both subscribers were created before a slot six hours from now; run after it.
    later = datetime.now(UTC) + timedelta(hours=12)
    slot = (later - timedelta(hours=6)).time()
    assert await queue_digests(db, later, slot, UTC) == 1
    digests = await _digests(db, later)
    assert list(digests) == [1]
    assert "Oreshnik <launch> & more" in parse_telegram_html(digests[1][0]).text
    for chat_id in (1, 2):  # the quiet chat's mark moves too, so it is not due again today
        subscriber = await db.get_subscriber(chat_id)
        assert subscriber is not None
        assert subscriber.last_digest_at == later

    assert await queue_digests(db, later + timedelta(minutes=1), slot, UTC) == 0
    assert await _digests(db, later + timedelta(minutes=1)) == digests


# --- each chat's own digest time, zone and language ----------------------------------------


@pytest.mark.parametrize(
    ("zone", "at", "last", "now", "due"),
    [
        # The chat's own zone and time (the service's: 08:00 UTC). Times are UTC.
        ("Europe/Moscow", "07:30", "2026-11-19 04:30:05", "2026-11-20 04:29", False),
        ("Europe/Moscow", "07:30", "2026-11-19 04:30:05", "2026-11-20 04:30", True),
        ("Europe/Moscow", None, "2026-11-19 05:00:05", "2026-11-20 04:59", False),  # 08:00 MSK
        ("Europe/Moscow", None, "2026-11-19 05:00:05", "2026-11-20 05:00", True),
        (None, "20:15", "2026-11-19 20:15:05", "2026-11-20 20:14", False),  # the service zone
        (None, "20:15", "2026-11-19 20:15:05", "2026-11-20 20:15", True),
        ("Mars/Olympus", "08:00", "2026-11-19 08:00:05", "2026-11-20 08:00", True),  # unknown
        # New York leaves summer time on 1 November 2026: 08:00 is 12:00 UTC, then 13:00.
        ("America/New_York", "08:00", "2026-10-31 12:00:05", "2026-11-01 12:59", False),
        ("America/New_York", "08:00", "2026-10-31 12:00:05", "2026-11-01 13:00", True),
        # ... and enters it on 8 March 2026: 13:00 UTC, then 12:00.
        ("America/New_York", "08:00", "2026-03-07 13:00:05", "2026-03-08 11:59", False),
        ("America/New_York", "08:00", "2026-03-07 13:00:05", "2026-03-08 12:00", True),
        # Kyiv, 01:30 on the night Europe leaves summer time (25 October 2026, 01:00 UTC).
        ("Europe/Kyiv", "01:30", "2026-10-23 22:30:05", "2026-10-24 22:29", False),
        ("Europe/Kyiv", "01:30", "2026-10-23 22:30:05", "2026-10-24 22:30", True),
        ("Europe/Kyiv", "01:30", "2026-10-24 22:30:05", "2026-10-25 23:29", False),
        ("Europe/Kyiv", "01:30", "2026-10-24 22:30:05", "2026-10-25 23:30", True),
    ],
)
def test_digest_due_at_the_chats_own_time_and_zone(
    zone: str | None, at: str | None, last: str, now: str, due: bool
) -> None:
    subscriber = Subscriber(
        1, "analyst", True, _at("2026-01-01 00:00"), _at(last), timezone=zone, digest_time=at
    )
    assert digest_due(subscriber, _at(now), EIGHT, UTC) is due


def test_digest_in_russian_counts_posts_with_plurals() -> None:
    for count, words in (
        (1, "1 найденный пост"),
        (3, "3 найденных поста"),
        (5, "5 найденных постов"),
    ):
        entries = [_entry(n, "Орешник") for n in range(count)]
        (part,) = render_digest(entries, SINCE, UNTIL, RU, MOSCOW)
        title = parse_telegram_html(part).text.split("\n")[0]
        assert title == f"📰 Сводка: {words}, 19 нояб. 11:00 – 20 нояб. 11:00 MSK"
    (part,) = render_digest([_entry(1, "x")] * 2, SINCE, UNTIL, EN, UTC)
    assert parse_telegram_html(part).text.startswith("📰 Digest: 2 matched posts, ")


def test_a_period_across_a_clock_change_labels_both_ends() -> None:
    since, until = _utc(2026, 10, 24, 6), _utc(2026, 10, 25, 7)  # 08:00 CEST – 08:00 CET
    (part,) = render_digest([_entry(1, "Oreshnik")], since, until, EN, BERLIN)
    title = parse_telegram_html(part).text.split("\n")[0]
    assert title == "📰 Digest: 1 matched post, 24 Oct 08:00 CEST – 25 Oct 08:00 CET"


def test_a_digest_names_sources_by_their_title_never_their_kind() -> None:
    post = Post("tgweb", "rybar", "9", SINCE, "Oreshnik", "https://t.me/rybar/9")
    titled = Post("rss", "google.com", "10", SINCE, "Oreshnik", None, channel_title="Alerts")
    entries = [
        DigestEntry(StoredPost(1, post), ("q",)),
        DigestEntry(StoredPost(2, titled), ("q",)),
    ]
    (part,) = render_digest(entries, SINCE, UNTIL, EN, UTC)
    text = parse_telegram_html(part).text
    assert "• rybar · 19 Nov 08:00 — q" in text
    assert "• Alerts · 19 Nov 08:00 — q" in text
    assert "tgweb" not in text
    assert " rss " not in text


def _local_clock(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%H:%M")


async def test_each_chat_gets_its_digest_at_its_time_in_its_language(db: Storage) -> None:
    # Three chats matched the same post: a Russian reader in Moscow whose digest time has
    # just passed, an English one in New York whose time is an hour away, and one with
    # the digest off.
    later = datetime.now(UTC) + timedelta(hours=12)
    post = Post("tgweb", "rybar", "77", datetime.now(UTC), "Oreshnik", "https://t.me/r/77")
    matches = []
    for chat_id in (1, 2, 3):
        await db.upsert_subscriber(chat_id, f"chat {chat_id}")
        subscription = await db.add_subscription(chat_id, "Oreshnik")
        assert subscription is not None
        matches.append(MatchRecord(subscription.id, chat_id, "Oreshnik", (Span(0, 8),)))
    await db.save_post(post, matches)
    past = _local_clock(later - timedelta(hours=1), "Europe/Moscow")
    await db.update_subscriber(1, language="ru", timezone="Europe/Moscow", digest_time=past)
    coming = _local_clock(later + timedelta(hours=1), "America/New_York")
    await db.update_subscriber(2, timezone="America/New_York", digest_time=coming)
    await db.update_subscriber(3, digest_enabled=False, digest_time=past, timezone="Europe/Moscow")

    assert await queue_digests(db, later, EIGHT, UTC, catalog=CATALOG) == 1
    digests = await _digests(db, later)
    assert list(digests) == [1]
    shown = parse_telegram_html(digests[1][0]).text
    assert shown.startswith("📰 Сводка: 1 найденный пост, ")
    assert shown.split("\n")[0].endswith(" MSK")
    assert "rybar · " in shown
    marks = {chat: await db.get_subscriber(chat) for chat in (1, 2, 3)}
    assert marks[1] is not None
    assert marks[1].last_digest_at == later
    assert marks[2] is not None
    assert marks[2].last_digest_at is None
    assert marks[3] is not None
    assert marks[3].last_digest_at == later

    # Two hours on, New York's time has come; the others are not due again.
    then = later + timedelta(hours=2)
    assert await queue_digests(db, then, EIGHT, UTC, catalog=CATALOG) == 1
    digests = await _digests(db, then)
    assert sorted(digests) == [1, 2]
    english = parse_telegram_html(digests[2][0]).text
    assert english.startswith("📰 Digest: 1 matched post, ")
    assert english.split("\n")[0].endswith((" EST", " EDT"))
