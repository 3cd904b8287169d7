"""`jsonl:PATH` — follows a file of JSON lines, one post each, like `tail -f`, with a cursor.

The cursor is the byte offset after the last line handled (with the line number, for log
messages, and the file's inode, to notice a replaced file). It is saved in the same
transaction as the post it follows, so a restart neither skips nor repeats a line.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.domain import Post, SourceSpec, clean_text
from bot.sources.base import Feed

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 1 << 20  # a longer line is skipped as malformed
READ_CHUNK = 1 << 16


class _Line(BaseModel):
    """One line of the file, validated at the edge."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    channel: str = Field(min_length=1, max_length=200)
    id: int | str
    date: datetime
    text: str = Field(max_length=1_000_000)
    url: str | None = None

    @field_validator("id")
    @classmethod
    def _id_present(cls, value: int | str) -> int | str:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) link")
        return value


def parse_line(raw: bytes) -> Post:
    """Turn one JSON line into a Post, or raise ValueError saying what is wrong."""
    try:
        data = json.loads(raw.decode("utf-8", "replace"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    # JSON may carry lone surrogates (`"\ud800"`); replace them before validation.
    data = {
        key: value.encode("utf-8", "replace").decode("utf-8") if isinstance(value, str) else value
        for key, value in data.items()
    }
    try:
        line = _Line.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "line"
        raise ValueError(f"{field}: {first['msg']}") from None
    date = line.date if line.date.tzinfo else line.date.replace(tzinfo=UTC)
    return Post(
        source="jsonl",
        channel=clean_text(line.channel.lstrip("@"), limit=200),
        post_id=str(line.id),
        date=date,
        text=clean_text(line.text),
        url=line.url,
    )


@dataclass(frozen=True, slots=True)
class _Cursor:
    offset: int = 0
    line: int = 0
    inode: int | None = None

    def dump(self) -> str:
        return json.dumps({"offset": self.offset, "line": self.line, "inode": self.inode})

    @classmethod
    def load(cls, text: str | None) -> _Cursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(int(data["offset"]), int(data["line"]), data.get("inode"))
        except (ValueError, KeyError, TypeError):
            log.warning("jsonl cursor %r is unreadable; starting from the top", text)
            return cls()


class JsonlSource:
    """Follows a JSON-lines file; with `follow=False` it stops at the end (for the demo)."""

    def __init__(self, path: str, *, poll_interval: float = 0.25, follow: bool = True) -> None:
        self.spec = SourceSpec("jsonl", path)
        self.path = Path(path).expanduser()
        self.poll_interval = poll_interval
        self.follow = follow
        self._warned_missing = False

    async def run(self, feed: Feed) -> None:
        cursor = _Cursor.load(await feed.cursor())
        while True:
            cursor = await self._read_new(feed, cursor)
            if not self.follow:
                return
            await asyncio.sleep(self.poll_interval)

    async def _read_new(self, feed: Feed, cursor: _Cursor) -> _Cursor:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if not self._warned_missing:
                log.warning("jsonl source %s: file does not exist yet; waiting", self.path)
                self._warned_missing = True
            return cursor
        self._warned_missing = False
        replaced = cursor.inode is not None and stat.st_ino != cursor.inode
        if replaced or stat.st_size < cursor.offset:
            # The file was replaced or truncated (log rotation): read the new one from the top.
            # Posts already stored are recognised by their key, so nothing is alerted twice.
            log.warning("jsonl source %s was replaced or truncated; reading it anew", self.path)
            cursor = _Cursor(0, 0, stat.st_ino)
        if stat.st_size == cursor.offset:
            return _Cursor(cursor.offset, cursor.line, stat.st_ino)
        with self.path.open("rb") as handle:
            handle.seek(cursor.offset)
            start = _Cursor(cursor.offset, cursor.line, stat.st_ino)
            return await self._consume(feed, handle, start)

    async def _consume(self, feed: Feed, handle: BinaryIO, cursor: _Cursor) -> _Cursor:
        buffer = b""
        skipping = False  # inside an over-long line: drop bytes until its newline
        while chunk := handle.read(READ_CHUNK):
            buffer += chunk
            while (newline := buffer.find(b"\n")) >= 0:
                raw, buffer = buffer[: newline + 1], buffer[newline + 1 :]
                cursor = _Cursor(cursor.offset + len(raw), cursor.line + 1, cursor.inode)
                if skipping:
                    skipping = False
                    await feed.advance(cursor.dump())
                    continue
                await self._handle_line(feed, raw, cursor)
            if len(buffer) > MAX_LINE_BYTES and not skipping:
                log.warning(
                    "jsonl %s line %d: longer than %d bytes; skipped",
                    self.path,
                    cursor.line + 1,
                    MAX_LINE_BYTES,
                )
                skipping = True
            if skipping:
                cursor = _Cursor(cursor.offset + len(buffer), cursor.line, cursor.inode)
                buffer = b""
        # An unterminated last line is left for the next read: the writer may be mid-line.
        return cursor

    async def _handle_line(self, feed: Feed, raw: bytes, cursor: _Cursor) -> None:
        if not raw.strip():
            await feed.advance(cursor.dump())
            return
        try:
            post = parse_line(raw)
        except ValueError as exc:
            log.warning("jsonl %s line %d: %s; skipped", self.path, cursor.line, exc)
            await feed.advance(cursor.dump())
            return
        await feed.deliver(post, cursor.dump())
