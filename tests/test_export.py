"""/export end to end, in Russian and English, through the real dispatcher and the stand-in
Bot API: the CSV and JSON files read back with the standard parsers (commas, quotes, line
breaks, emoji and formula-like texts), the period and its boundary, bad arguments, an empty
export, files cut at their bounds, an export that never holds up other chats, a group's
members refused; and the pure parts (arguments, spreadsheet-safe cells, the byte budget,
caption plurals) as tables."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot

import bot.storage.sqlite as sqlite_module
import handlers.export as export_module
from bot.domain import DigestEntry, Post, StoredPost
from bot.i18n import Catalog
from bot.ingest import Matcher
from bot.storage import Storage
from bot.storage.sqlite import MatchRecord
from handlers.export import (
    FIELDS,
    ExportRequest,
    FileBuilder,
    Format,
    parse_request,
    spreadsheet_safe,
)
from tests.botapi import FakeBotAPI, SentMessage
from tests.conftest import USER, Chat, polling

CATALOG = Catalog(strict=True)
MOSCOW = ZoneInfo("Europe/Moscow")
GROUP = -100_700
ADMIN = 701
MEMBER = 702
OTHER = 703  # another person, in a private chat of their own

# Texts a CSV parser or a spreadsheet could stumble on.
COMMAS = 'Iskander, "Oreshnik" and Kalibr,\nsecond line; "third"'
EMOJI = "🚀 Sarmat test launch 🇷🇺 — «Сармат» 👍🏽"
FORMULA = '=cmd|" /C calc"!A0 Kinzhal'
FEED = "https://example.org/feed.xml"


@dataclass(frozen=True, slots=True)
class Saved:
    """A post stored for a test, and what the export should say of it."""

    post: Post
    queries: tuple[str, ...]


class Archive:
    """A chat's queries, and posts matched by them at chosen moments (the storage's clock
    is set back while a match is recorded)."""

    def __init__(self, storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
        self.storage = storage
        self.monkeypatch = monkeypatch
        self.queries: dict[tuple[int, str], int] = {}
        self.number = 0

    async def chat(
        self, chat_id: int, *queries: str, kind: str = "private", language: str = "en"
    ) -> None:
        await self.storage.upsert_subscriber(chat_id, "Tester", kind=kind, tg_language=language)
        for query in queries:
            subscription = await self.storage.add_subscription(chat_id, query)
            assert subscription is not None
            self.queries[chat_id, query] = subscription.id

    async def match(
        self,
        chat_id: int,
        text: str,
        queries: Sequence[str],
        at: datetime,
        *,
        source: str = "tgweb",
        channel: str = "milinfolive",
        title: str | None = "Военная хроника",
        link: bool = True,
    ) -> Saved:
        """A post published at `at` and matched by `queries` of the chat at `at` too."""
        self.number += 1
        url = f"https://t.me/{channel}/{self.number}" if link else None
        post = Post(source, channel, str(self.number), at, text, url, channel_title=title)
        records = [
            MatchRecord(self.queries[chat_id, query], chat_id, query, ()) for query in queries
        ]
        with self.monkeypatch.context() as patch:
            patch.setattr(sqlite_module, "_now", lambda: at)
            await self.storage.save_post(post, records)
        return Saved(post, tuple(queries))


@pytest.fixture
def archive(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> Archive:
    return Archive(storage, monkeypatch)


async def _export(api: FakeBotAPI, text: str, language: str, chat_id: int = USER) -> SentMessage:
    """Say `text` in a private chat; the bot's reply (a document or a message)."""
    await api.say(chat_id, text, user_id=chat_id, language_code=language)
    return api.sent_to(chat_id)[-1]


def _csv_rows(sent: SentMessage) -> list[dict[str, str]]:
    """The rows of an exported CSV, checked to be UTF-8 with a BOM, CRLF, the known header."""
    assert sent.method.lower() == "senddocument"
    assert sent.file is not None
    assert sent.file.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for UTF-8
    assert sent.file.endswith(b"\r\n")
    rows = list(csv.reader(io.StringIO(sent.file.decode("utf-8-sig"), newline="")))
    assert rows[0] == list(FIELDS)
    return [dict(zip(FIELDS, row, strict=True)) for row in rows[1:]]


def _json_records(sent: SentMessage) -> list[dict[str, object]]:
    assert sent.method.lower() == "senddocument"
    assert sent.file is not None
    assert not sent.file.startswith(b"\xef\xbb\xbf")
    records = json.loads(sent.file.decode("utf-8"))
    assert isinstance(records, list)
    return records


async def _hostile_posts(archive: Archive, now: datetime) -> list[Saved]:
    """The chat's matches, newest first: commas and quotes and a line break (two queries),
    emoji from a feed without a link, a formula-like text from a channel whose title starts
    with a minus, and a post the channel deleted since. Another chat's match and one a
    month old are there too, to be left out."""
    await archive.chat(USER, "Iskander", "Oreshnik", "Sarmat", "Kinzhal")
    await archive.storage.update_subscriber(USER, timezone="Europe/Moscow")
    await archive.chat(OTHER, "Iskander")
    saved = [
        await archive.match(USER, COMMAS, ["Oreshnik", "Iskander"], now - timedelta(hours=2)),
        await archive.match(
            USER,
            EMOJI,
            ["Sarmat"],
            now - timedelta(days=1),
            source="rss",
            channel=FEED,
            title=None,
            link=False,
        ),
        await archive.match(
            USER, FORMULA, ["Kinzhal"], now - timedelta(days=3), title="-= Mil Info =-"
        ),
        await archive.match(USER, "Iskander on the move", ["Iskander"], now - timedelta(days=5)),
    ]
    deleted = saved[-1].post
    assert await archive.storage.mark_deleted(deleted.source, deleted.channel, deleted.post_id)
    await archive.match(OTHER, "Iskander elsewhere", ["Iskander"], now - timedelta(hours=1))
    await archive.match(USER, "Iskander long ago", ["Iskander"], now - timedelta(days=31))
    return saved


# --- end to end: the files -----------------------------------------------------------------


@pytest.mark.parametrize(("language", "caption"), [("en", "4 posts"), ("ru", "4 поста")])
async def test_the_csv_reads_back_one_row_per_post_with_its_queries(
    chat: Chat, api: FakeBotAPI, archive: Archive, language: str, caption: str
) -> None:
    now = datetime.now(UTC)
    saved = await _hostile_posts(archive, now)

    sent = await _export(api, "/export", language)

    assert caption in (sent.caption or "")
    assert "✂️" not in (sent.caption or "")
    today = now.astimezone(MOSCOW).date().isoformat()
    assert sent.filename == f"dozor-matches-{today}-30d.csv"
    rows = _csv_rows(sent)
    assert [row["text"] for row in rows] == [COMMAS, EMOJI, "'" + FORMULA, "Iskander on the move"]
    first, emoji, formula, deleted = rows
    assert first == {
        "date": saved[0].post.date.astimezone(MOSCOW).isoformat(timespec="seconds"),
        "source": "tgweb",
        "channel_title": "Военная хроника",
        "channel": "milinfolive",
        "link": saved[0].post.url,
        "text": COMMAS,
        "queries": "Iskander; Oreshnik",  # in the order the chat saved them
        "edited": "false",
        "deleted": "false",
    }
    assert first["date"].endswith("+03:00")
    assert datetime.fromisoformat(first["date"]) == saved[0].post.date.replace(microsecond=0)
    assert (emoji["source"], emoji["channel"], emoji["channel_title"]) == ("rss", FEED, "")
    assert emoji["link"] == ""
    assert formula["channel_title"] == "'-= Mil Info =-"
    assert formula["queries"] == "Kinzhal"
    assert deleted["deleted"] == "true"


@pytest.mark.parametrize(("language", "caption"), [("en", "5 posts"), ("ru", "5 постов")])
async def test_json_reads_back_as_an_array_of_objects(
    chat: Chat, api: FakeBotAPI, archive: Archive, language: str, caption: str
) -> None:
    now = datetime.now(UTC)
    saved = await _hostile_posts(archive, now)

    sent = await _export(api, "/export 90 json", language)

    assert caption in (sent.caption or "")
    assert sent.filename is not None
    assert sent.filename.endswith("-90d.json")
    assert sent.file is not None
    assert "«Сармат»".encode() in sent.file  # UTF-8, not \u escapes
    records = _json_records(sent)
    assert [r["text"] for r in records] == [
        COMMAS,
        EMOJI,
        FORMULA,  # JSON is not a spreadsheet: the text as it is
        "Iskander on the move",
        "Iskander long ago",  # 31 days old: within 90
    ]
    assert records[0] == {
        "date": saved[0].post.date.astimezone(MOSCOW).isoformat(timespec="seconds"),
        "source": "tgweb",
        "channel_title": "Военная хроника",
        "channel": "milinfolive",
        "link": saved[0].post.url,
        "text": COMMAS,
        "queries": ["Iskander", "Oreshnik"],
        "edited": False,
        "deleted": False,
    }
    assert records[1]["link"] is None
    assert [r["deleted"] for r in records] == [False, False, False, True, False]


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_the_period_ends_where_it_says(
    chat: Chat, api: FakeBotAPI, archive: Archive, language: str
) -> None:
    now = datetime.now(UTC)
    await archive.chat(USER, "Oreshnik")
    await archive.match(USER, "Oreshnik 29 days ago", ["Oreshnik"], now - timedelta(days=29))
    await archive.match(USER, "Oreshnik 31 days ago", ["Oreshnik"], now - timedelta(days=31))
    await archive.match(USER, "Oreshnik 400 days ago", ["Oreshnik"], now - timedelta(days=400))

    thirty = _csv_rows(await _export(api, "/export", language))
    assert [row["text"] for row in thirty] == ["Oreshnik 29 days ago"]
    thirty_two = _csv_rows(await _export(api, "/export 32", language))
    assert [row["text"] for row in thirty_two] == ["Oreshnik 29 days ago", "Oreshnik 31 days ago"]
    year = _json_records(await _export(api, "/export json 365", language))
    assert len(year) == 2
    sent = await _export(api, "/export 1", language)
    assert sent.method.lower() == "sendmessage"
    assert sent.text == CATALOG.texts(language)("export-empty", days=1)


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_nothing_matched_is_a_short_message_not_an_empty_file(
    chat: Chat, api: FakeBotAPI, archive: Archive, language: str
) -> None:
    await archive.chat(USER, "Oreshnik")

    sent = await _export(api, "/export", language)

    assert sent.method.lower() == "sendmessage"
    assert sent.text == CATALOG.texts(language)("export-empty", days=30)


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("args", ["0", "366", "abc", "90 90", "csv json", "-5", "30d", "²"])
async def test_a_bad_argument_gets_examples(
    chat: Chat, api: FakeBotAPI, archive: Archive, language: str, args: str
) -> None:
    await archive.chat(USER, "Oreshnik")
    await archive.match(USER, "Oreshnik", ["Oreshnik"], datetime.now(UTC))

    sent = await _export(api, f"/export {args}", language)

    assert sent.method.lower() == "sendmessage"
    assert f"<code>{args}</code>" in sent.text
    assert "<code>/export 90</code>" in sent.text
    assert "365" in sent.text
    if language == "ru":
        assert "Укажите число дней" in sent.text


# --- end to end: the bounds ----------------------------------------------------------------


async def test_too_many_posts_keeps_the_newest_and_says_so(
    chat: Chat, api: FakeBotAPI, archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    await archive.chat(USER, "Oreshnik")
    for hours in range(7):
        await archive.match(USER, f"Oreshnik {hours}", ["Oreshnik"], now - timedelta(hours=hours))
    monkeypatch.setattr(export_module, "PAGE", 2)  # several pages, the last one partly taken

    monkeypatch.setattr(export_module, "MAX_POSTS", 7)  # exactly all of them: not cut
    sent = await _export(api, "/export", "ru")
    assert len(_csv_rows(sent)) == 7
    assert "✂️" not in (sent.caption or "")

    monkeypatch.setattr(export_module, "MAX_POSTS", 5)
    sent = await _export(api, "/export", "ru")
    assert [row["text"] for row in _csv_rows(sent)] == [f"Oreshnik {h}" for h in range(5)]
    assert "5 постов" in (sent.caption or "")
    assert "✂️" in (sent.caption or "")
    assert "<code>/export 7</code>" in (sent.caption or "")


@pytest.mark.parametrize(("kind", "read"), [("csv", _csv_rows), ("json", _json_records)])
async def test_too_many_bytes_keeps_the_newest_within_the_bound(
    chat: Chat,
    api: FakeBotAPI,
    archive: Archive,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    read: Callable[[SentMessage], Sequence[Mapping[str, object]]],
) -> None:
    now = datetime.now(UTC)
    await archive.chat(USER, "Oreshnik")
    for hours in range(10):
        text = f"Oreshnik {hours} " + "Орешник " * 60  # about 1 KB in UTF-8
        await archive.match(USER, text, ["Oreshnik"], now - timedelta(hours=hours))
    monkeypatch.setattr(export_module, "MAX_BYTES", 4_000)

    sent = await _export(api, f"/export {kind}", "en")

    assert sent.file is not None
    assert len(sent.file) <= 4_000
    rows = read(sent)
    assert 2 <= len(rows) < 10
    assert [str(r["text"]).split()[1] for r in rows] == [str(h) for h in range(len(rows))]
    assert f"{len(rows)} posts" in (sent.caption or "")
    assert "✂️" in (sent.caption or "")


async def test_an_export_being_built_holds_up_no_other_chat(
    chat: Chat, api: FakeBotAPI, archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a file is encoded (here: held on its worker thread until another chat has been
    answered) the bot answers everyone; the same chat's second /export is told to wait."""
    now = datetime.now(UTC)
    await archive.chat(USER, "Oreshnik")
    await archive.match(USER, "Oreshnik", ["Oreshnik"], now)
    entered, release = threading.Event(), threading.Event()
    encode = FileBuilder.add

    def held(builder: FileBuilder, entries: Sequence[DigestEntry]) -> int:
        entered.set()
        assert release.wait(30), "the other chats were not answered meanwhile"
        return encode(builder, entries)

    monkeypatch.setattr(FileBuilder, "add", held)
    api.push_message(USER, "/export", user_id=USER)
    assert await asyncio.to_thread(entered.wait, 30)
    # The other person is answered while the export is held.
    assert "/subscribe" in await api.say(OTHER, "/help", user_id=OTHER)
    busy = await api.say(USER, "/export", user_id=USER)
    assert busy == CATALOG.texts("en")("export-busy")
    release.set()
    (*_, sent) = await api.wait_for_sent(2, chat_id=USER)
    assert [row["text"] for row in _csv_rows(sent)] == ["Oreshnik"]


# --- groups ----------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_in_a_group_only_administrators_export(
    api: FakeBotAPI,
    bot: Bot,
    storage: Storage,
    matcher: Matcher,
    archive: Archive,
    language: str,
) -> None:
    api.add_chat(GROUP, "supergroup", title="Arms Control Desk")
    api.set_member(GROUP, ADMIN, "administrator")
    api.set_member(GROUP, MEMBER, "member")
    await archive.chat(GROUP, "Oreshnik", kind="supergroup", language=language)
    await archive.match(GROUP, "Oreshnik in the group", ["Oreshnik"], datetime.now(UTC))
    t = CATALOG.texts(language)

    async with polling(storage, matcher, bot):
        refused = await api.say(
            GROUP, "/export", user_id=MEMBER, chat_type="supergroup", language_code=language
        )
        assert refused == t("group-admins-only")
        assert all(m.method.lower() == "sendmessage" for m in api.sent_to(GROUP))

        caption = await api.say(
            GROUP, "/export", user_id=ADMIN, chat_type="supergroup", language_code=language
        )
        sent = api.sent_to(GROUP)[-1]
    assert caption == t("export-caption", count=1, days=30)
    assert [row["text"] for row in _csv_rows(sent)] == ["Oreshnik in the group"]


# --- the pure parts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "request_"),
    [
        (None, ExportRequest(30, Format.CSV)),
        ("", ExportRequest(30, Format.CSV)),
        ("90", ExportRequest(90, Format.CSV)),
        ("1", ExportRequest(1, Format.CSV)),
        ("365", ExportRequest(365, Format.CSV)),
        ("json", ExportRequest(30, Format.JSON)),
        ("JSON", ExportRequest(30, Format.JSON)),
        ("90 json", ExportRequest(90, Format.JSON)),
        ("json  7", ExportRequest(7, Format.JSON)),
        ("csv", ExportRequest(30, Format.CSV)),
        ("0", None),
        ("366", None),
        ("99999999999999999999", None),
        ("-5", None),
        ("30d", None),
        ("²", None),
        ("٣", None),  # a digit, but not one people type for days
        ("90 90", None),
        ("json csv", None),
        ("xlsx", None),
    ],
)
def test_parse_request(text: str | None, request_: ExportRequest | None) -> None:
    assert parse_request(text) == request_


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ("=1+1", "'=1+1"),
        ("+7 495", "'+7 495"),
        ("-= title =-", "'-= title =-"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("Iskander = Oreshnik", "Iskander = Oreshnik"),
        ("2026-11-29T14:05:00+03:00", "2026-11-29T14:05:00+03:00"),
        ("", ""),
    ],
)
def test_spreadsheet_safe(cell: str, safe: str) -> None:
    assert spreadsheet_safe(cell) == safe


def _entry(number: int, text: str) -> DigestEntry:
    moment = datetime(2026, 11, 29, 12, tzinfo=UTC) - timedelta(hours=number)
    post = Post("tgweb", "milinfolive", str(number), moment, text, channel_title="Хроника")
    return DigestEntry(StoredPost(number, post), ("Oreshnik",))


@pytest.mark.parametrize("kind", list(Format))
@pytest.mark.parametrize("budget", [10, 200, 700, 1_500, 5_000, 100_000])
def test_a_file_never_passes_its_byte_budget(kind: Format, budget: int) -> None:
    entries = [_entry(n, f"Орешник {n} " + '🚀, "x"\n' * (n * 10)) for n in range(20)]
    builder = FileBuilder(kind, MOSCOW, budget)
    builder.add(entries[:7])
    builder.add(entries[7:])
    data = builder.finish()
    assert len(data) <= budget or builder.count == 0
    if builder.count < len(entries):
        assert builder.full
    if kind is Format.JSON:
        assert len(json.loads(data)) == builder.count
    else:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
        assert len(rows) == builder.count + 1


@pytest.mark.parametrize(
    ("language", "count", "days", "expected"),
    [
        ("ru", 1, 1, "за последний 1 день: 1 пост,"),
        ("ru", 2, 2, "за последние 2 дня: 2 поста,"),
        ("ru", 5, 30, "за последние 30 дней: 5 постов,"),
        ("ru", 21, 21, "за последний 21 день: 21 пост,"),
        ("ru", 11, 11, "за последние 11 дней: 11 постов,"),
        ("ru", 104, 90, "за последние 90 дней: 104 поста,"),
        ("en", 1, 1, "of the last day: 1 post,"),
        ("en", 2, 30, "of the last 30 days: 2 posts,"),
    ],
)
def test_caption_plurals(language: str, count: int, days: int, expected: str) -> None:
    caption = CATALOG.texts(language)("export-caption", count=count, days=days)
    assert expected in caption.lower()
