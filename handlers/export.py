"""/export: a chat's matches of the last days as a file, one row per matched post.

`/export` covers 30 days, `/export 90` 90 (1–365), `/export json` or `/export 90 json` gives
JSON instead of CSV. A post is in the export when one of the chat's queries matched it in the
period (deleted posts too, marked). Posts are read a page at a time, newest first, and encoded
on a worker thread, so a big export neither holds the database nor blocks other chats; a file
stops at MAX_POSTS posts or MAX_BYTES (Telegram takes files of up to 50 MB from bots), keeping
the newest, and its caption says it was cut.

In a group only its administrators may export (`handlers.groups.MANAGING_COMMANDS`): the file
holds everything the group was alerted about, a history members who joined later never saw.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, Message

from bot.config import Settings
from bot.delivery.chats import chat_zone
from bot.domain import DigestEntry, Subscriber, clean_text
from bot.i18n import Texts
from bot.storage import Storage
from handlers.texts import code
from handlers.turns import ChatTurns

DEFAULT_DAYS = 30
MAX_DAYS = 365
MAX_POSTS = 20_000  # posts in one file at most ...
MAX_BYTES = 45 * 1024 * 1024  # ... and bytes: Telegram's 50 MB for bots, with room to spare
PAGE = 1_000  # posts read from the database at a time
EXPORTS_AT_ONCE = 2  # files being built at the same time, all chats together (memory)
MAX_ECHO = 64  # characters of a bad argument repeated in a reply
FIELDS = (
    "date",
    "source",
    "channel_title",
    "channel",
    "link",
    "text",
    "queries",
    "edited",
    "deleted",
)
# A spreadsheet takes a cell starting with one of these for a formula (CSV injection): such
# a cell gets a leading apostrophe, which spreadsheets read as "text follows".
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class Format(StrEnum):
    CSV = "csv"
    JSON = "json"


_FORMATS = {kind.value: kind for kind in Format}


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What `/export` was asked for: how many days back, and the file format."""

    days: int = DEFAULT_DAYS
    format: Format = Format.CSV


def parse_request(text: str | None) -> ExportRequest | None:
    """`90`, `json`, `90 json` or `json 90` (any case); None if anything else is there or
    the days are outside 1–MAX_DAYS."""
    days: int | None = None
    kind: Format | None = None
    for word in (text or "").lower().split():
        if word.isascii() and word.isdigit() and days is None:
            days = int(word)
        elif word in _FORMATS and kind is None:
            kind = _FORMATS[word]
        else:
            return None
    if days is not None and not 1 <= days <= MAX_DAYS:
        return None
    return ExportRequest(days or DEFAULT_DAYS, kind or Format.CSV)


# --- the file ----------------------------------------------------------------------------


def record(entry: DigestEntry, zone: tzinfo) -> dict[str, object]:
    """One matched post as the file holds it: its date in the chat's zone (ISO 8601, with
    the offset), where it was posted, its link, its full text and the queries it matched."""
    post = entry.post.post
    return {
        "date": post.date.astimezone(zone).isoformat(timespec="seconds"),
        "source": post.source,
        "channel_title": post.channel_title or "",
        "channel": post.channel,
        "link": post.url or "",
        "text": clean_text(post.text).strip(),
        "queries": list(entry.queries),
        "edited": post.edited,
        "deleted": entry.post.deleted,
    }


def spreadsheet_safe(cell: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def csv_cells(fields: dict[str, object]) -> list[str]:
    """A record as CSV cells: queries joined with `; `, flags as true/false."""
    cells = []
    for name in FIELDS:
        value = fields[name]
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list):
            text = "; ".join(str(each) for each in value)
        else:
            text = str(value)
        cells.append(spreadsheet_safe(text))
    return cells


class FileBuilder:
    """A CSV or JSON file built a record at a time within a byte budget: a record that would
    take the file past it is not added, and the file is full from then on.

    CSV is UTF-8 with a byte-order mark (so Excel reads Cyrillic right), RFC 4180: CRLF line
    ends, fields with commas, quotes or line breaks quoted. JSON is UTF-8, an array of
    objects with the same fields (queries as a list, flags as booleans, no link as null).
    """

    def __init__(self, kind: Format, zone: tzinfo, max_bytes: int) -> None:
        self.kind = kind
        self.count = 0
        self.full = False
        self._zone = zone
        self._parts: list[bytes] = []
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\r\n")
        if kind is Format.CSV:
            self._parts.append("\ufeff".encode() + self._csv_line(list(FIELDS)))
        else:
            self._parts.append(b"[")
        self._ending = b"" if kind is Format.CSV else b"\n]\n"
        self._room = max_bytes - len(self._parts[0]) - len(self._ending)

    def _csv_line(self, cells: list[str]) -> bytes:
        self._csv.writerow(cells)
        line = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return line.encode()

    def _encoded(self, entry: DigestEntry) -> bytes:
        fields = record(entry, self._zone)
        if self.kind is Format.CSV:
            return self._csv_line(csv_cells(fields))
        fields["link"] = fields["link"] or None
        separator = "\n" if not self.count else ",\n"
        return (separator + json.dumps(fields, ensure_ascii=False)).encode()

    def add(self, entries: Sequence[DigestEntry]) -> int:
        """Add records until one does not fit; how many were added. CPU work: run it on a
        worker thread."""
        added = 0
        for entry in entries:
            if self.full:
                break
            data = self._encoded(entry)
            if len(data) > self._room:
                self.full = True
                break
            self._parts.append(data)
            self._room -= len(data)
            self.count += 1
            added += 1
        return added

    def finish(self) -> bytes:
        """The whole file (each CSV line ends with its CRLF; JSON's array is closed)."""
        return b"".join(self._parts) + self._ending


@dataclass(frozen=True, slots=True)
class Export:
    """A built file: its bytes, how many posts it holds, and whether newer ones filled it
    before every post of the period was in."""

    data: bytes
    count: int
    cut: bool


async def build_export(
    db: Storage, chat_id: int, since: datetime, kind: Format, zone: tzinfo
) -> Export:
    """The chat's posts matched since `since`, newest first, as a file within MAX_POSTS and
    MAX_BYTES. Pages are read from the database and encoded on a worker thread in turn."""
    builder = FileBuilder(kind, zone, MAX_BYTES)
    before: tuple[datetime, int] | None = None
    while True:
        want = min(PAGE, MAX_POSTS - builder.count + 1)  # one more tells if there are more
        page = await db.matched_posts(chat_id, since, want, before=before)
        room = MAX_POSTS - builder.count
        added = await asyncio.to_thread(builder.add, page[:room])
        if builder.full or added < len(page):
            cut = True
            break
        if len(page) < want:
            cut = False
            break
        last = page[-1].post
        before = (last.post.date, last.id)
    data = await asyncio.to_thread(builder.finish)
    return Export(data, builder.count, cut)


def file_name(today: datetime, days: int, kind: Format) -> str:
    """`dozor-matches-2026-11-29-30d.csv`: the day of the export (the chat's) and the period."""
    return f"dozor-matches-{today:%Y-%m-%d}-{days}d.{kind.value}"


# --- the reply ---------------------------------------------------------------------------


class Exports(ChatTurns):
    """At most one export of a chat at a time (`turn`), and EXPORTS_AT_ONCE of all chats
    together (a file may take tens of megabytes while it is built)."""

    def __init__(self, at_once: int = EXPORTS_AT_ONCE) -> None:
        super().__init__()
        self._slots = asyncio.Semaphore(at_once)

    async def cmd_export(
        self,
        message: Message,
        command: CommandObject,
        db: Storage,
        t: Texts,
        settings: Settings,
        subscriber: Subscriber | None,
    ) -> None:
        request = parse_request(command.args)
        if request is None:
            await message.answer(
                t(
                    "export-invalid",
                    value=code((command.args or "").strip()[:MAX_ECHO]),
                    max=MAX_DAYS,
                    examples=", ".join(code(e) for e in ("/export", "/export 90", "/export json")),
                )
            )
            return
        with self.turn(message.chat.id) as allowed:
            if not allowed:
                await message.answer(t("export-busy"))
                return
            zone = chat_zone(subscriber, settings.tz)
            now = datetime.now(UTC)
            async with self._slots:
                built = await build_export(
                    db, message.chat.id, now - timedelta(days=request.days), request.format, zone
                )
        if not built.count:
            await message.answer(t("export-empty", days=request.days))
            return
        caption = t("export-caption", count=built.count, days=request.days)
        if built.cut:
            caption += "\n" + t(
                "export-cut",
                posts=MAX_POSTS,
                megabytes=MAX_BYTES // (1024 * 1024),
                example=code("/export 7"),
            )
        name = file_name(now.astimezone(zone), request.days, request.format)
        await message.answer_document(BufferedInputFile(built.data, name), caption=caption)


def build_router() -> Router:
    router = Router(name="export")
    exports = Exports()
    router.message.register(exports.cmd_export, Command("export"))
    return router
