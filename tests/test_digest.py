"""Daily digests: when a subscriber is due, how a digest is written and split, and what gets
queued (messages and the trend chart) on a real database.

When a digest is due as a running service sees it (every five minutes, across clock changes,
downtime and restarts): tests/test_digest_schedule.py.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.delivery.photos import read_chart
from bot.delivery.render import MAX_MESSAGE, visible_length
from bot.digest import digest_due, latest_slot, queue_digests, render_digest
from bot.domain import (
    MODE_BOTH,
    MODE_DIGEST,
    MODE_INSTANT,
    DigestEntry,
    Post,
    StoredPost,
    Subscriber,
)
from bot.domain import Subscription as SavedQuery
from bot.i18n import Catalog
from bot.storage import Storage
from bot.storage.sqlite import MatchRecord
from bot.storage.sqlite import _us as match_time
from tests.test_render import HOSTILE_TEXTS, parse_telegram_html

CATALOG = Catalog(strict=True)
EN = CATALOG.texts("en")
RU = CATALOG.texts("ru")
MOSCOW = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
EIGHT = time(8, 0)
THIN = "\u2009"  # CLDR sets the dash of an English date range (and a Russian one's) in thin spaces


def _at(text: str) -> datetime:
    """`2026-11-20 07:59` as UTC; an explicit offset such as `+03:00` is kept."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type, misc]


# Words for posts that tell different stories: random sequences of them share almost no three
# words in a row, so folding keeps them apart (identical texts would fold into one story).
_VOCABULARY = (
    "convoy bridge river harbour radar battery column village ridge airfield depot tanker "
    "drone frigate brigade supply corridor station railway tunnel checkpoint border crossing "
    "artillery engineer satellite signal ministry spokesman report morning evening northern "
    "southern eastern western heavy light rapid slow quiet loud damaged repaired moved "
    "stopped opened closed reached crossed held lost"
).split()


def _distinct_text(n: int, words: int = 40) -> str:
    """A post's text unlike every other `n`'s (same `n`, same text)."""
    return " ".join(random.Random(n).choices(_VOCABULARY, k=words)) + "."


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
    title: str | None = None,
) -> DigestEntry:
    link = f"https://t.me/{channel}/{n}" if url == "auto" else url
    date = SINCE + timedelta(minutes=n)
    post = Post("jsonl", channel, str(n), date, text, link, channel_title=title)
    return DigestEntry(StoredPost(n, post), queries)


def _entry_links(parts: list[str]) -> list[str]:
    return [link for part in parts for link in parse_telegram_html(part).links]


def _lines(part: str) -> list[str]:
    """A message's lines as the chat shows them."""
    return parse_telegram_html(part).text.split("\n")


def _items(parts: list[str]) -> list[str]:
    """The story lines (`• source · time: excerpt`) of a digest's messages."""
    return [line for part in parts for line in _lines(part) if line.startswith("• ")]


def _big_digest() -> list[DigestEntry]:
    """200 long posts telling different stories, five per query (all of them shown), each
    beginning with its query and with a hostile piece of text inside."""
    return [
        _entry(
            n,
            f"topic{n // 5} {HOSTILE_TEXTS[n % len(HOSTILE_TEXTS)]} {_distinct_text(n, 90)}",
            (f"topic{n // 5}",),
        )
        for n in range(200)
    ]


def test_big_digest_is_split_into_valid_messages_with_every_entry_once() -> None:
    entries = _big_digest()
    assert all(len(e.post.post.text) >= 500 for e in entries)
    parts = render_digest(entries, SINCE, UNTIL, EN, UTC)
    assert len(parts) > 5
    for part in parts:
        shown = parse_telegram_html(part)  # valid HTML, ≤ 4096 visible units
        assert visible_length(shown.text) > MAX_MESSAGE // 2 or part is parts[-1]
    links = _entry_links(parts)
    assert sorted(links) == sorted(f"https://t.me/ch/{n}" for n in range(200))
    assert len(links) == len(set(links))
    assert len(_items(parts)) == 200
    first = _lines(parts[0])
    assert first[0] == f"📰 Digest for November 19{THIN}–{THIN}20 (1/{len(parts)})"
    assert first[2] == "19 Nov 08:00 – 20 Nov 08:00 UTC · 200 matched posts, 200 stories"


def test_a_long_digest_splits_between_stories_each_message_headed_and_numbered() -> None:
    entries = _big_digest()
    parts = render_digest(entries, SINCE, UNTIL, EN, UTC)
    total = len(parts)
    intro = "19 Nov 08:00 – 20 Nov 08:00 UTC · 200 matched posts, 200 stories"
    for number, part in enumerate(parts, 1):
        shown = parse_telegram_html(part)
        assert visible_length(shown.text) <= MAX_MESSAGE
        lines = shown.text.split("\n")
        assert lines[0] == f"📰 Digest for November 19{THIN}–{THIN}20 ({number}/{total})"
        assert shown.bold[0] == lines[0]
        assert (intro in lines) is (number == 1)
        # A query's heading travels with its first story: never last in a message.
        for index, line in enumerate(lines):
            if line.startswith("🔎 "):
                assert lines[index + 1].startswith("• "), f"{line!r} ends message {number}"
    # No story is cut: each is whole, in one message: its source, time and excerpt.
    by_link = {entry.post.post.url: entry for entry in entries}
    items = _items(parts)
    assert len(items) == len(entries)
    for part in parts:
        shown = parse_telegram_html(part)
        stories = [line for line in shown.text.split("\n") if line.startswith("• ")]
        assert len(stories) == len(shown.links)
        for line, link in zip(stories, shown.links, strict=True):
            post = by_link[link].post.post
            when = post.date.strftime("%-d %b %H:%M")
            flat = " ".join(post.text.split())
            assert line.startswith(f"• ch · {when}: {flat[:120]}")
            assert line.endswith("…")
            assert 170 < visible_length(line) < 220


def test_digest_shows_hostile_text_verbatim() -> None:
    entries = [
        _entry(n, text, (text,), channel=text[:20], url=None)
        for n, text in enumerate(HOSTILE_TEXTS)
    ]
    parts = render_digest(entries, SINCE, UNTIL, EN, UTC)
    shown = "\n\n".join(parse_telegram_html(part).text for part in parts)
    for n, text in enumerate(HOSTILE_TEXTS):
        snippet = " ".join(text.split())
        assert f"🔎 {snippet} — 1 post\n• {text[:20]} · 19 Nov 08:{n:02d}: {snippet}" in shown


def test_digest_entry_snippet_is_short_and_whitespace_folded() -> None:
    text = "Oreshnik\n\nlaunched   from\tKapustin Yar. " + "More words here. " * 100
    (part,) = render_digest([_entry(1, text)], SINCE, UNTIL, EN, UTC)
    line = _lines(part)[-1]
    assert line.startswith("• ch · 19 Nov 08:01: ")
    snippet = line.removeprefix("• ch · 19 Nov 08:01: ")
    assert snippet.startswith("Oreshnik launched from Kapustin Yar. More words")
    assert snippet.endswith("…")
    assert visible_length(snippet) <= 180


@pytest.mark.parametrize("url", [None, "javascript:alert(1)", "https://x/" + "a" * 3000])
def test_digest_entry_without_a_safe_url_has_no_link(url: str | None) -> None:
    (part,) = render_digest([_entry(1, "Oreshnik", url=url)], SINCE, UNTIL, EN, UTC)
    shown = parse_telegram_html(part)
    assert shown.links == []
    assert "🔎 Oreshnik — 1 post\n• ch · 19 Nov 08:01: Oreshnik" in shown.text


def test_digest_times_are_in_the_chats_time_zone() -> None:
    (part,) = render_digest([_entry(30, "Oreshnik")], SINCE, UNTIL, EN, MOSCOW)
    lines = _lines(part)
    assert lines[:3] == [
        f"📰 Digest for November 19{THIN}–{THIN}20",
        "",
        "19 Nov 11:00 – 20 Nov 11:00 MSK · 1 matched post, 1 story",
    ]
    assert "• ch · 19 Nov 11:30: Oreshnik" in lines


def test_the_heading_names_the_local_dates_of_the_period() -> None:
    # 21:00 UTC – 21:00 UTC is midnight to midnight in Moscow: one local day.
    since, until = _utc(2026, 11, 18, 21), _utc(2026, 11, 19, 21)
    (part,) = render_digest([_entry(1, "Oreshnik")], since, until, EN, MOSCOW)
    assert _lines(part)[0] == "📰 Digest for November 19"
    (part,) = render_digest([_entry(1, "Oreshnik")], since, until, EN, UTC)
    assert _lines(part)[0] == f"📰 Digest for November 18{THIN}–{THIN}19"
    (part,) = render_digest([_entry(1, "Орешник")], SINCE, _utc(2026, 12, 2, 8), RU, MOSCOW)
    assert _lines(part)[0] == f"📰 Сводка за 19 ноября{THIN}—{THIN}2 декабря"


def test_entry_matched_by_many_long_queries_still_fits() -> None:
    # A chat may keep 100 queries of up to 500 characters; ten of them match this post.
    queries = tuple(f"q{n} " + "Oreshnik OR Орешник " * 24 for n in range(10))
    parts = render_digest([_entry(1, "Oreshnik Орешник", queries)], SINCE, UNTIL, EN, UTC)
    for part in parts:
        parse_telegram_html(part)


def test_digest_in_russian_counts_posts_and_stories_with_plurals() -> None:
    for count, words in (
        (1, "1 найденный пост, 1 сюжет"),
        (3, "3 найденных поста, 3 сюжета"),
        (5, "5 найденных постов, 5 сюжетов"),
        (21, "21 найденный пост, 21 сюжет"),
    ):
        entries = [_entry(n, f"Орешник {_distinct_text(n)}", ("Орешник",)) for n in range(count)]
        (part,) = render_digest(entries, SINCE, UNTIL, RU, MOSCOW)
        lines = _lines(part)
        assert lines[0] == "📰 Сводка за 19—20 ноября"
        assert lines[2] == f"19 нояб. 11:00 – 20 нояб. 11:00 MSK · {words}"
        posts = {1: "1 пост", 3: "3 поста", 5: "5 постов", 21: "21 пост"}[count]
        assert lines[4] == f"🔎 Орешник — {posts}"
    # The same post matched twice is one post... and two copies of a story are one story.
    (part,) = render_digest([_entry(1, "x")] * 2, SINCE, UNTIL, EN, UTC)
    assert _lines(part)[2].endswith(" · 2 matched posts, 1 story")


def test_a_period_across_a_clock_change_labels_both_ends() -> None:
    since, until = _utc(2026, 10, 24, 6), _utc(2026, 10, 25, 7)  # 08:00 CEST – 08:00 CET
    (part,) = render_digest([_entry(1, "Oreshnik")], since, until, EN, BERLIN)
    lines = _lines(part)
    assert lines[0] == f"📰 Digest for October 24{THIN}–{THIN}25"
    assert lines[2] == "24 Oct 08:00 CEST – 25 Oct 08:00 CET · 1 matched post, 1 story"


def test_a_digest_names_sources_by_their_title_never_their_kind() -> None:
    post = Post("tgweb", "rybar", "9", SINCE, "Oreshnik", "https://t.me/rybar/9")
    titled = Post("rss", "google.com", "10", SINCE, "Oreshnik", None, channel_title="Alerts")
    entries = [
        DigestEntry(StoredPost(1, post), ("q",)),
        DigestEntry(StoredPost(2, titled), ("q",)),
    ]
    (part,) = render_digest(entries, SINCE, UNTIL, EN, UTC)
    text = parse_telegram_html(part).text
    assert "• rybar · 19 Nov 08:00: Oreshnik" in text
    assert "• Alerts · 19 Nov 08:00: Oreshnik" in text
    assert "tgweb" not in text
    assert " rss " not in text
    assert "google.com" not in text


# --- what a digest shows: stories by query, folded reposts, matched words ------------------


def test_the_same_news_reposted_by_three_channels_is_one_story() -> None:
    news = (
        "Oreshnik launched from Kapustin Yar at dawn, the ministry of defence confirmed; "
        "the target was an aircraft plant in Dnipro, officials said."
    )
    entries = [
        _entry(1, f"🚀 {news}\n\nПодписаться | @rybar", channel="rybar", title="Рыбарь"),
        _entry(2, f"⚡️⚡️ {news} https://t.me/milinfolive/1", channel="milinfolive"),
        _entry(3, f"{news.replace(';', ':')}!!! 🔥\nSource: Reuters", channel="readovka"),
        _entry(
            4,
            "Analysts say the Oreshnik missile carries six warheads at hypersonic speed "
            "and that a second launch is not expected before spring.",
            channel="rybar",
        ),
    ]
    (part,) = render_digest(entries, SINCE, UNTIL, EN, UTC)
    lines = _lines(part)
    assert lines[2] == "19 Nov 08:00 – 20 Nov 08:00 UTC · 4 matched posts, 2 stories"
    assert lines[4] == "🔎 Oreshnik — 4 posts"
    # The earliest post leads its story; the other channels are named under it.
    assert lines[5].startswith("• Рыбарь · 19 Nov 08:01: 🚀 Oreshnik launched from Kapustin")
    assert lines[6] == "   ↪ also in milinfolive, readovka"
    assert lines[8].startswith("• rybar · 19 Nov 08:04: Analysts say the Oreshnik missile")
    assert parse_telegram_html(part).links == ["https://t.me/rybar/1", "https://t.me/rybar/4"]


def test_a_story_told_again_by_its_own_source_counts_as_similar_posts() -> None:
    news = "Oreshnik launched from Kapustin Yar at dawn, the ministry of defence confirmed."
    entries = [_entry(n, f"{news} {'🔥' * n}", channel="rybar") for n in (1, 2, 3)]
    (part,) = render_digest(entries, SINCE, UNTIL, EN, UTC)
    assert "   ↪ +2 similar posts" in _lines(part)
    (part,) = render_digest(entries, SINCE, UNTIL, RU, MOSCOW)
    assert "   ↪ ещё 2 похожих поста" in _lines(part)


def test_also_in_names_three_sources_then_counts_the_rest() -> None:
    news = "Oreshnik launched from Kapustin Yar at dawn, the ministry of defence confirmed."
    channels = ["rybar", "milinfolive", "readovka", "mash", "shot", "izvestia"]
    entries = [_entry(n, news, channel=name) for n, name in enumerate(channels)]
    (part,) = render_digest(entries, SINCE, UNTIL, EN, UTC)
    assert "   ↪ also in milinfolive, readovka, mash, +2" in _lines(part)


def test_a_querys_count_is_the_posts_it_matched_even_when_stories_fold() -> None:
    news = "Oreshnik launched from Kapustin Yar at dawn, the ministry of defence confirmed."
    entries = [
        _entry(1, news, ("Oreshnik",), channel="rybar"),
        _entry(2, f"{news} Sarmat next", ("Sarmat",), channel="mash"),  # folds with the first
        _entry(3, "Sarmat test launch reported by officials in Plesetsk today", ("Sarmat",)),
    ]
    (part,) = render_digest(entries, SINCE, UNTIL, EN, UTC, queries=["Oreshnik", "Sarmat"])
    headings = [line for line in _lines(part) if line.startswith("🔎 ")]
    assert headings == ["🔎 Oreshnik — 1 post", "🔎 Sarmat — 2 posts"]


def test_the_excerpt_bolds_the_words_the_query_matched() -> None:
    text = "Ночью по Днепру нанесён удар: впервые применён «Орешник». Запуск Орешника подтвердили."
    (part,) = render_digest([_entry(1, text, ("Орешник",))], SINCE, UNTIL, RU, MOSCOW)
    assert "«<b>Орешник</b>»" in part
    assert "Запуск <b>Орешника</b> подтвердили" in part
    shown = parse_telegram_html(part)
    assert shown.bold[2:] == ["Орешник", "Орешника"]  # after the heading and the query


def test_the_excerpt_starts_near_the_first_matched_word_of_a_long_post() -> None:
    text = _distinct_text(7, 80) + " Then the Oreshnik launch was confirmed. " + "x " * 50
    (part,) = render_digest([_entry(1, text)], SINCE, UNTIL, EN, UTC)
    (line,) = _items([part])
    snippet = line.removeprefix("• ch · 19 Nov 08:01: ")
    assert snippet.startswith("…")
    assert snippet.endswith("…")
    assert "Then the Oreshnik launch was confirmed." in snippet
    assert "<b>Oreshnik</b>" in part


# --- queue_digests on a real database --------------------------------------------------------


def _stored_time(moment: datetime) -> str:
    """A moment as the database stores it: UTC ISO text of a fixed width."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


async def _write(storage: Storage, sql: str, *params: object) -> None:
    """A raw write, for what only the clock sets: when a chat, a match or a digest was."""
    await storage._db.execute(sql, params)


async def _add_chat(
    storage: Storage,
    chat_id: int,
    *queries: str,
    created: datetime | None = None,
    modes: dict[str, str] | None = None,
    **settings: object,
) -> list[SavedQuery]:
    """A chat with its settings and queries (saved in the order given)."""
    await storage.upsert_subscriber(chat_id, f"chat {chat_id}")
    if settings:
        await storage.update_subscriber(chat_id, **settings)
    saved = []
    for query in queries:
        mode = (modes or {}).get(query, MODE_BOTH)
        found = await storage.add_subscription(chat_id, query, mode=mode)
        assert found is not None
        saved.append(found)
    if created is not None:
        await _write(
            storage,
            "UPDATE subscribers SET created_at = ? WHERE chat_id = ?",
            _stored_time(created),
            chat_id,
        )
    return saved


async def _add_match(
    storage: Storage,
    queries: list[SavedQuery],
    text: str,
    date: datetime | None = None,
    *,
    found: datetime | None = None,
    channel: str = "rybar",
    views: int | None = None,
) -> str:
    """A post matched by `queries`, published at `date` and matched at `found` (by default
    `date`: a moment the test chooses, not the clock's); returns its link. The post is
    named after its text: the same text again is the same post, matched once."""
    number = str(random.Random(text).randrange(10**9))
    url = f"https://t.me/{channel}/{number}"
    post = Post("tgweb", channel, number, date or datetime.now(UTC), text, url, views=views)
    result = await storage.save_post(
        post, [MatchRecord(q.id, q.chat_id, q.query, ()) for q in queries]
    )
    moment = found or date
    if moment is not None:
        await storage.merge_matches()  # the staged matches, into the table changed here
        await _write(
            storage,
            "UPDATE matches SET created_at = ? WHERE post_id = ?",
            match_time(moment),
            result.post_id,
        )
    return url


async def _digests(storage: Storage) -> dict[int, list[str]]:
    """The digest messages queued for each chat, in order (charts left out)."""
    by_chat: dict[int, list[str]] = {}
    for row in await storage._all(
        "SELECT chat_id, text FROM outbox WHERE kind = 'digest' AND media IS NULL ORDER BY id"
    ):
        by_chat.setdefault(int(row["chat_id"]), []).append(row["text"])
    return by_chat


async def _charts(storage: Storage) -> dict[int, list[str]]:
    """The chart rows queued with each chat's digests (their JSON)."""
    by_chat: dict[int, list[str]] = {}
    for row in await storage._all(
        "SELECT chat_id, text FROM outbox WHERE kind = 'digest' AND media = 'chart' ORDER BY id"
    ):
        by_chat.setdefault(int(row["chat_id"]), []).append(row["text"])
    return by_chat


async def _subscriber(storage: Storage, chat_id: int) -> Subscriber:
    found = await storage.get_subscriber(chat_id)
    assert found is not None
    return found


async def _with_one_match(storage: Storage) -> None:
    """Chat 1 has a query that matched a post; chat 2 talks to the bot but matched nothing."""
    (query,) = await _add_chat(storage, 1, "Oreshnik")
    await _add_chat(storage, 2)
    await _add_match(storage, [query], "Oreshnik <launch> & more")


async def test_forced_digest_goes_to_chats_with_matches_only_once(storage: Storage) -> None:
    await _with_one_match(storage)
    now = datetime.now(UTC)
    assert await queue_digests(storage, now, EIGHT, UTC, force=True) == 1
    digests = await _digests(storage)
    assert list(digests) == [1]
    (text,) = digests[1]
    shown = parse_telegram_html(text)
    assert " · 1 matched post, 1 story\n" in shown.text
    assert "\n🔎 Oreshnik — 1 post\n• rybar · " in shown.text
    assert "<b>Oreshnik</b> &lt;launch&gt; &amp; more" in text
    assert shown.text.endswith(": Oreshnik <launch> & more")
    assert len(shown.links) == 1
    assert shown.links[0].startswith("https://t.me/rybar/")
    assert (await _subscriber(storage, 1)).last_digest_at == now
    assert (await _subscriber(storage, 2)).last_digest_at is None  # nothing said, no mark

    again = datetime.now(UTC)
    assert await queue_digests(storage, again, EIGHT, UTC, force=True) == 0
    assert await _digests(storage) == digests


async def test_a_forced_digest_for_one_chat_queues_only_its_own(storage: Storage) -> None:
    for chat_id in (1, 2, 3):
        queries = await _add_chat(storage, chat_id, "Oreshnik")
        await _add_match(storage, queries, f"Oreshnik {_distinct_text(chat_id)}")
    now = datetime.now(UTC)
    assert await queue_digests(storage, now, EIGHT, UTC, force=True, chat_id=2) == 1
    assert list(await _digests(storage)) == [2]
    assert list(await _charts(storage)) == [2]
    marks = [(await _subscriber(storage, chat_id)).last_digest_at for chat_id in (1, 2, 3)]
    assert marks == [None, now, None]
    # A forced digest leaves the chat's schedule alone.
    assert (await _subscriber(storage, 2)).next_digest_at is None

    assert await queue_digests(storage, datetime.now(UTC), EIGHT, UTC, force=True) == 2
    assert sorted(await _digests(storage)) == [1, 2, 3]
    assert [len(texts) for texts in (await _digests(storage)).values()] == [1, 1, 1]


async def test_unforced_run_before_the_slot_queues_nothing(storage: Storage) -> None:
    await _with_one_match(storage)
    now = datetime.now(UTC)
    slot_in_an_hour = (now + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    assert await queue_digests(storage, now, slot_in_an_hour, UTC) == 0
    assert await _digests(storage) == {}
    for chat_id in (1, 2):
        subscriber = await _subscriber(storage, chat_id)
        assert subscriber.last_digest_at is None
        assert subscriber.next_digest_at is not None
        assert now < subscriber.next_digest_at <= now + timedelta(hours=1)


async def test_unforced_run_after_the_slot_sends_once_and_moves_every_mark(
    storage: Storage,
) -> None:
    await _with_one_match(storage)
    # Both subscribers were created before a slot six hours from now; run after it.
    later = datetime.now(UTC) + timedelta(hours=12)
    slot = (later - timedelta(hours=6)).time()
    assert await queue_digests(storage, later, slot, UTC) == 1
    digests = await _digests(storage)
    assert list(digests) == [1]
    assert "Oreshnik <launch> & more" in parse_telegram_html(digests[1][0]).text
    for chat_id in (1, 2):  # the quiet chat's mark moves too, so it is not due again today
        subscriber = await _subscriber(storage, chat_id)
        assert subscriber.last_digest_at == later
        assert subscriber.next_digest_at == later + timedelta(hours=18)

    assert await queue_digests(storage, later + timedelta(minutes=1), slot, UTC) == 0
    assert await _digests(storage) == digests


async def test_a_digest_groups_stories_by_query_in_the_chats_order(storage: Storage) -> None:
    # Saved in this order; the first post matched the last query, so neither the order of
    # the posts nor the alphabet gives the order of the groups.
    sarmat, oreshnik, burevestnik = await _add_chat(
        storage, 1, "Sarmat", "Oreshnik", "Burevestnik"
    )
    start = datetime.now(UTC) - timedelta(hours=3)
    links: dict[str | int, str] = {}
    links["b"] = await _add_match(
        storage, [burevestnik], f"Burevestnik {_distinct_text(100)}", start
    )
    # Matched by two queries: shown once, under the first, and counted under both.
    links["both"] = await _add_match(
        storage,
        [sarmat, oreshnik],
        f"Sarmat and Oreshnik {_distinct_text(101)}",
        start + timedelta(minutes=1),
    )
    # Seven more for Oreshnik: the five read most are shown, the other two counted.
    for n in range(7):
        links[n] = await _add_match(
            storage,
            [oreshnik],
            f"Oreshnik {_distinct_text(n)}",
            start + timedelta(minutes=2 + n),
            views=1000 - 100 * n,
        )
    assert await queue_digests(storage, datetime.now(UTC), EIGHT, UTC, force=True) == 1
    (text,) = (await _digests(storage))[1]
    shown = parse_telegram_html(text)
    lines = shown.text.split("\n")
    assert lines[2].endswith(" · 9 matched posts, 9 stories")
    headings = [line for line in lines if line.startswith("🔎 ")]
    assert headings == ["🔎 Sarmat — 1 post", "🔎 Oreshnik — 8 posts", "🔎 Burevestnik — 1 post"]
    assert shown.links == [links["both"], *(links[n] for n in range(5)), links["b"]]
    sarmat_at, oreshnik_at = lines.index(headings[0]), lines.index(headings[1])
    assert lines[sarmat_at + 1].startswith("• rybar · ")
    # The words of the query it is listed under, in bold.
    assert "<b>Sarmat</b> and Oreshnik" in text
    assert lines[oreshnik_at + 10] == "… and 2 more posts"  # five stories, blank lines between
    assert lines[oreshnik_at + 11 :] == ["", headings[2], lines[-1]]


async def test_queries_in_instant_alerts_only_mode_stay_out_of_the_digest(
    storage: Storage,
) -> None:
    oreshnik, kinzhal, sarmat = await _add_chat(
        storage,
        1,
        "Oreshnik",
        "Kinzhal",
        "Sarmat",
        modes={"Kinzhal": MODE_INSTANT, "Sarmat": MODE_DIGEST},
    )
    await _add_match(storage, [oreshnik], f"Oreshnik {_distinct_text(1)}")
    await _add_match(storage, [kinzhal], f"Kinzhal {_distinct_text(2)}")
    await _add_match(storage, [sarmat], f"Sarmat {_distinct_text(3)}")
    assert await queue_digests(storage, datetime.now(UTC), EIGHT, UTC, force=True) == 1
    (text,) = (await _digests(storage))[1]
    lines = parse_telegram_html(text).text.split("\n")
    assert lines[2].endswith(" · 2 matched posts, 2 stories")
    assert [line for line in lines if line.startswith("🔎 ")] == [
        "🔎 Oreshnik — 1 post",
        "🔎 Sarmat — 1 post",
    ]
    assert "Kinzhal" not in text


# --- quiet days ------------------------------------------------------------------------------

# 08:00 in Moscow on 20 November 2026, and the digest a day before.
MOSCOW_EIGHT = _utc(2026, 11, 20, 5)
DAY_BEFORE = MOSCOW_EIGHT - timedelta(days=1)


async def _add_moscow_reader(
    storage: Storage, *queries: str, modes: dict[str, str] | None = None, **settings: object
) -> list[SavedQuery]:
    """A Russian reader in Moscow, whose previous digest went out a day before MOSCOW_EIGHT."""
    saved = await _add_chat(
        storage,
        1,
        *queries,
        created=DAY_BEFORE - timedelta(days=30),
        modes=modes,
        language="ru",
        timezone="Europe/Moscow",
        **settings,
    )
    await _write(
        storage,
        "UPDATE subscribers SET last_digest_at = ? WHERE chat_id = 1",
        _stored_time(DAY_BEFORE),
    )
    return saved


async def test_a_quiet_day_sends_nothing_but_moves_the_mark(storage: Storage) -> None:
    await _add_moscow_reader(storage, "Oreshnik")
    assert await queue_digests(storage, MOSCOW_EIGHT, EIGHT, UTC, catalog=CATALOG) == 0
    assert await _digests(storage) == {}
    assert await _charts(storage) == {}
    subscriber = await _subscriber(storage, 1)
    assert subscriber.last_digest_at == MOSCOW_EIGHT
    assert subscriber.next_digest_at == MOSCOW_EIGHT + timedelta(days=1)


async def test_a_quiet_day_says_so_when_the_chat_asked(storage: Storage) -> None:
    await _add_moscow_reader(storage, "Oreshnik", digest_quiet_days=True)
    assert await queue_digests(storage, MOSCOW_EIGHT, EIGHT, UTC, catalog=CATALOG) == 1
    assert await _digests(storage) == {
        1: [
            "<b>📰 Сводка за 19—20 ноября</b>\n\n"
            "За 19 нояб. 08:00 – 20 нояб. 08:00 MSK по вашим запросам ничего не нашлось."
        ]
    }
    assert await _charts(storage) == {}  # nothing matched in 14 days: nothing to draw
    subscriber = await _subscriber(storage, 1)
    assert subscriber.last_digest_at == MOSCOW_EIGHT
    assert subscriber.next_digest_at == MOSCOW_EIGHT + timedelta(days=1)


# --- the chart -------------------------------------------------------------------------------


@pytest.mark.parametrize("chart", [True, False])
async def test_the_digests_chart_counts_matches_per_query_per_local_day(
    storage: Storage, chart: bool
) -> None:
    oreshnik, sarmat, kinzhal = await _add_moscow_reader(
        storage,
        "Oreshnik",
        "Sarmat",
        "Kinzhal",
        modes={"Kinzhal": MODE_INSTANT},
        digest_chart=chart,
    )
    found = timedelta(minutes=5)  # each post is matched five minutes after it was published
    posts = [
        # (queries, publication time UTC): the day it counts for in Moscow
        ([oreshnik], _utc(2026, 11, 1, 9)),  # matched before the chart's days: not read
        ([oreshnik], _utc(2026, 11, 6, 20, 30)),  # 6 Nov 23:30 MSK: a day before the chart
        ([oreshnik], _utc(2026, 11, 6, 21, 30)),  # 7 Nov 00:30 MSK: the chart's first day
        ([oreshnik], _utc(2026, 11, 10, 9)),  # 10 Nov
        ([oreshnik], _utc(2026, 11, 15, 23, 30)),  # 16 Nov 02:30 MSK
        ([sarmat], _utc(2026, 11, 16, 10)),  # 16 Nov
        ([kinzhal], _utc(2026, 11, 18, 10)),  # instant alerts only: not charted
        ([oreshnik, sarmat], _utc(2026, 11, 19, 12)),  # 19 Nov, for both; in the digest
        ([kinzhal], _utc(2026, 11, 19, 13)),  # in the digest's period, but instant only
        ([oreshnik], _utc(2026, 11, 19, 21, 30)),  # 20 Nov 00:30 MSK; in the digest
    ]
    for n, (queries, published) in enumerate(posts):
        words = " ".join(q.query for q in queries)
        await _add_match(
            storage, queries, f"{words} {_distinct_text(n)}", published, found=published + found
        )

    assert await queue_digests(storage, MOSCOW_EIGHT, EIGHT, UTC, catalog=CATALOG) == 1
    (text,) = (await _digests(storage))[1]
    assert "· 2 найденных поста, 2 сюжета\n" in parse_telegram_html(text).text
    assert "Kinzhal" not in text
    charts = await _charts(storage)
    if not chart:
        assert charts == {}
        return
    (payload,) = charts[1]
    data, title, labels, caption = read_chart(payload)
    assert len(data.days) == 14
    assert data.days[0] == date(2026, 11, 7)
    assert data.days[-1] == date(2026, 11, 20)  # the day of the digest, in Moscow
    assert labels[date(2026, 11, 20)] == "20 нояб."
    assert title == "Упоминания по дням, последние 14 дней"
    assert caption == "📈 Упоминания ваших запросов по дням, 7—20 ноября"
    expected = {
        "Oreshnik": {7: 1, 10: 1, 16: 1, 19: 1, 20: 1},
        "Sarmat": {16: 1, 19: 1},
    }
    assert {series.label: series.counts for series in data.series} == {
        query: tuple(per_day.get(day.day, 0) for day in data.days)
        for query, per_day in expected.items()
    }
    # The chart comes after the digest's messages, in the same queue.
    rows = await storage._all("SELECT media FROM outbox WHERE kind = 'digest' ORDER BY id")
    assert [row["media"] for row in rows] == [None, "chart"]


async def test_the_chart_counts_posts_from_before_a_clock_change_on_their_local_day(
    storage: Storage,
) -> None:
    now = _utc(2026, 10, 30, 7)  # 08:00 CET; Berlin left summer time on 25 October
    (query,) = await _add_chat(
        storage, 1, "Oreshnik", created=_utc(2026, 10, 1), timezone="Europe/Berlin"
    )
    await _write(
        storage,
        "UPDATE subscribers SET last_digest_at = ? WHERE chat_id = 1",
        _stored_time(now - timedelta(days=1)),
    )
    await _add_match(storage, [query], "Oreshnik at night", _utc(2026, 10, 20, 22, 30))
    await _add_match(storage, [query], "Oreshnik yesterday", _utc(2026, 10, 29, 12))
    assert await queue_digests(storage, now, EIGHT, UTC, catalog=CATALOG) == 1
    (payload,) = (await _charts(storage))[1]
    data, _, _, _ = read_chart(payload)
    (series,) = data.series
    counted = {day: n for day, n in zip(data.days, series.counts, strict=True) if n}
    # 22:30 UTC on 20 October was 00:30 CEST on the 21st.
    assert counted == {date(2026, 10, 21): 1, date(2026, 10, 29): 1}


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


def _local_clock(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%H:%M")


async def test_each_chat_gets_its_digest_at_its_time_in_its_language(storage: Storage) -> None:
    # Three chats matched the same post: a Russian reader in Moscow whose digest time has
    # just passed, an English one in New York whose time is an hour away, and one with
    # the digest off.
    later = datetime.now(UTC) + timedelta(hours=12)
    queries = []
    for chat_id in (1, 2, 3):
        queries.extend(await _add_chat(storage, chat_id, "Oreshnik"))
    await _add_match(storage, queries, "Oreshnik")
    past = _local_clock(later - timedelta(hours=1), "Europe/Moscow")
    await storage.update_subscriber(1, language="ru", timezone="Europe/Moscow", digest_time=past)
    coming = _local_clock(later + timedelta(hours=1), "America/New_York")
    await storage.update_subscriber(2, timezone="America/New_York", digest_time=coming)
    await storage.update_subscriber(
        3, digest_enabled=False, digest_time=past, timezone="Europe/Moscow"
    )

    assert await queue_digests(storage, later, EIGHT, UTC, catalog=CATALOG) == 1
    digests = await _digests(storage)
    assert list(digests) == [1]
    lines = _lines(digests[1][0])
    assert lines[0].startswith("📰 Сводка за ")
    assert re.fullmatch(r".* MSK · 1 найденный пост, 1 сюжет", lines[2])
    assert lines[4] == "🔎 Oreshnik — 1 пост"
    assert lines[5].startswith("• rybar · ")
    assert lines[5].endswith(": Oreshnik")
    marks = [(await _subscriber(storage, chat_id)).last_digest_at for chat_id in (1, 2, 3)]
    assert marks == [later, None, later]  # the chat with the digest off: its mark moves

    # Two hours on, New York's time has come; the others are not due again.
    then = later + timedelta(hours=2)
    assert await queue_digests(storage, then, EIGHT, UTC, catalog=CATALOG) == 1
    digests = await _digests(storage)
    assert sorted(digests) == [1, 2]
    lines = _lines(digests[2][0])
    assert lines[0].startswith("📰 Digest for ")
    assert re.fullmatch(r".* E[SD]T · 1 matched post, 1 story", lines[2])
    assert lines[4] == "🔎 Oreshnik — 1 post"
