"""`jsonl:PATH` — follows a file of JSON lines, one post each, like `tail -f`, with a cursor.

The cursor is the byte offset after the last line handled, with the line number (for log
messages), the file's inode and a fingerprint of the bytes just before the offset. It is saved
in the same transaction as the post it follows, so a restart neither skips nor repeats a line.

Log rotation must not lose lines, so the file is recognised by its inode *and* its content:

- rename rotation (logrotate `create`): one handle stays open between polls, so it keeps the
  old file; when the path names another inode, the old file is read to its end before the new
  one is read from the top. While the new file is still empty the old one is kept up to
  `rotation_grace` seconds, because the writer appends to it until it reopens the path.
- copy-truncate: the inode stays, but the bytes before the offset change or vanish; a size
  check alone misses that once the writer has written past the old offset again. The unread
  tail is in the copy, the sibling whose bytes before the offset match; it is read from the
  offset to its end, then the truncated file from the top.
- either one while Dozor was stopped: at start the same siblings (`posts.jsonl.1`,
  `posts.jsonl-20261129`; compressed ones cannot be read on from an offset) are searched for
  the cursor's file, by inode first, then by content.

Reading a line twice would not alert twice (posts are keyed by source, channel and id), but
the cursor is kept exact so that nothing is read again needlessly.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.domain import Post, SourceSpec, clean_text
from bot.sources.base import Feed

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 1 << 20  # a longer line is skipped as malformed
READ_CHUNK = 1 << 16
# Fingerprinted bytes before the offset. More than 64: many posts end alike (a channel's
# signature with its link), and only a differing byte tells a rewritten file from the old one.
TAIL_BYTES = 256
ROTATION_GRACE = 5.0  # seconds the old file is still read after a rename rotation
COMPRESSED = (".gz", ".bz2", ".xz", ".zst")


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


def _fingerprint(tail: bytes) -> str:
    return hashlib.blake2b(tail, digest_size=8).hexdigest()


def _slide(tail: bytes, data: bytes) -> bytes:
    """The last TAIL_BYTES of `tail + data`, without joining a long `data` first."""
    if len(data) >= TAIL_BYTES:
        return data[-TAIL_BYTES:]
    return (tail + data)[-TAIL_BYTES:]


@dataclass(frozen=True, slots=True)
class _Cursor:
    offset: int = 0
    line: int = 0
    inode: int | None = None
    tail: str | None = None  # fingerprint of the bytes before `offset`; None in old cursors

    @classmethod
    def start(cls, inode: int) -> _Cursor:
        return cls(0, 0, inode, _fingerprint(b""))

    def dump(self) -> str:
        return json.dumps(
            {"offset": self.offset, "line": self.line, "inode": self.inode, "tail": self.tail}
        )

    @classmethod
    def load(cls, text: str | None) -> _Cursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            tail = data.get("tail")
            return cls(
                int(data["offset"]),
                int(data["line"]),
                data.get("inode"),
                tail if isinstance(tail, str) else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("jsonl cursor %r is unreadable; starting from the top", text)
            return cls()


@dataclass(frozen=True, slots=True)
class _OpenFile:
    """An open file: its handle reads the same file whatever name the path gives later."""

    path: Path  # the name it was opened by
    handle: BinaryIO
    inode: int

    @classmethod
    def open(cls, path: Path) -> _OpenFile:
        handle = path.open("rb")
        return cls(path, handle, os.fstat(handle.fileno()).st_ino)

    def size(self) -> int:
        return os.fstat(self.handle.fileno()).st_size

    def tail_before(self, offset: int) -> bytes:
        start = max(0, offset - TAIL_BYTES)
        return os.pread(self.handle.fileno(), offset - start, start)

    def continues(self, cursor: _Cursor) -> bool:
        """Whether this file still holds what the cursor read, so reading goes on at its offset."""
        if self.size() < cursor.offset:
            return False
        if cursor.tail is None:
            return True  # a cursor saved before fingerprints: the size is all there is to check
        return _fingerprint(self.tail_before(cursor.offset)) == cursor.tail

    def close(self) -> None:
        self.handle.close()


class JsonlSource:
    """Follows a JSON-lines file; with `follow=False` it stops at the end (for the demo)."""

    def __init__(
        self,
        path: str,
        *,
        poll_interval: float = 0.25,
        follow: bool = True,
        rotation_grace: float = ROTATION_GRACE,
    ) -> None:
        self.spec = SourceSpec("jsonl", path)
        self.path = Path(path).expanduser()
        self.poll_interval = poll_interval
        self.follow = follow
        self.rotation_grace = rotation_grace
        self._warned_missing = False
        self._file: _OpenFile | None = None  # the file being read, kept open between polls
        self._renamed_at: float | None = None  # when the path was first seen naming another file
        self._renamed_lines = 0  # lines read from the old file since then

    async def run(self, feed: Feed) -> None:
        cursor = _Cursor.load(await feed.cursor())
        try:
            while True:
                cursor = await self._poll(feed, cursor)
                if not self.follow:
                    return
                await asyncio.sleep(self.poll_interval)
        finally:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._renamed_at, self._renamed_lines = None, 0

    async def _poll(self, feed: Feed, cursor: _Cursor) -> _Cursor:
        if self._file is None:
            try:
                file, cursor = self._open(cursor)
            except FileNotFoundError:
                if not self._warned_missing:
                    log.warning("jsonl source %s: file does not exist yet; waiting", self.path)
                    self._warned_missing = True
                return cursor
            self._warned_missing = False
            self._file = file
        file = self._file
        try:
            stat: os.stat_result | None = self.path.stat()
        except FileNotFoundError:
            stat = None  # renamed away, not yet created anew: the old file is still read
        if stat is None or stat.st_ino != file.inode:
            return await self._finish_renamed(feed, file, cursor, stat)
        if not file.continues(cursor):
            cursor = await self._after_truncation(feed, file, cursor)
        return await self._read(feed, file, cursor)

    def _open(self, cursor: _Cursor) -> tuple[_OpenFile, _Cursor]:
        """Open the file the cursor points into: the path, or what rotation left of it."""
        file = _OpenFile.open(self.path)
        if cursor.inode is None:  # a first run, or a cursor saved before inodes were
            if cursor.offset == 0:
                return file, _Cursor.start(file.inode)
            return file, replace(cursor, inode=file.inode)
        if cursor.inode == file.inode:
            return file, cursor
        # Rotated while Dozor was stopped. Read on in the old file; the next poll sees the path
        # naming another file and moves to it once the old one is finished.
        rotated = self._find_continuation(cursor)
        if rotated is not None:
            file.close()
            return rotated, replace(cursor, inode=rotated.inode)
        log.warning(
            "jsonl source %s was replaced while Dozor was stopped and the file it was reading "
            "(after line %d) is gone; reading the new one from the top",
            self.path,
            cursor.line,
        )
        return file, _Cursor.start(file.inode)

    def _siblings(self) -> list[os.DirEntry[str]]:
        """Files rotation may have made of ours: `posts.jsonl.1`, `posts.jsonl-20261129`, …"""
        name = self.path.name
        try:
            with os.scandir(self.path.parent) as entries:
                return [
                    entry
                    for entry in entries
                    if entry.name != name
                    and entry.name.startswith(name)
                    and not entry.name.endswith(COMPRESSED)
                    and entry.is_file()
                ]
        except OSError:
            return []

    def _find_continuation(self, cursor: _Cursor) -> _OpenFile | None:
        """The sibling holding the lines after the cursor, opened: the one with the cursor's
        inode if its content matches, else the newest whose bytes before the offset match."""
        candidates: list[tuple[bool, float, str]] = []
        for entry in self._siblings():
            try:
                candidates.append(
                    (entry.inode() != cursor.inode, -entry.stat().st_mtime, entry.path)
                )
            except OSError:
                continue
        for other_inode, _, path in sorted(candidates):
            # Without a fingerprint only the inode can tell; at offset 0 any file would match.
            if other_inode and (cursor.tail is None or cursor.offset == 0):
                continue
            try:
                file = _OpenFile.open(Path(path))
            except OSError:
                continue
            if file.continues(cursor):
                return file
            file.close()
        return None

    async def _finish_renamed(
        self, feed: Feed, file: _OpenFile, cursor: _Cursor, stat: os.stat_result | None
    ) -> _Cursor:
        """The path names another file now (or none): read the old one to its end, then
        move to the new one once the writer has (or should have) moved to it."""
        now = time.monotonic()
        if self._renamed_at is None:
            self._renamed_at = now
        # Judged before the old file's last read: once the writer writes to the new file it
        # has stopped writing to the old one, so that read gets everything.
        moved_on = stat is not None and (
            stat.st_size > 0 or not self.follow or now - self._renamed_at >= self.rotation_grace
        )
        before = cursor.line
        cursor = await self._read(feed, file, cursor)
        self._renamed_lines += cursor.line - before
        if not moved_on:
            return cursor
        try:
            new = _OpenFile.open(self.path)
        except FileNotFoundError:
            return cursor
        log.warning(
            "jsonl source %s: finished %s (%d lines), now reading the new %s from the top",
            self.path,
            self._describe(file),
            self._renamed_lines,
            self.path.name,
        )
        unfinished = file.size() - cursor.offset
        if unfinished > 0:
            log.warning(
                "jsonl source %s: the old file ended in an unterminated line (%d bytes); dropped",
                self.path,
                unfinished,
            )
        file.close()
        self._file, self._renamed_at, self._renamed_lines = new, None, 0
        cursor = _Cursor.start(new.inode)
        await feed.advance(cursor.dump())
        return await self._read(feed, new, cursor)

    def _describe(self, file: _OpenFile) -> str:
        for entry in self._siblings():
            try:
                if entry.inode() == file.inode:
                    return f"the rotated file {entry.name}"
            except OSError:
                continue
        return "the replaced file (no longer in its folder)"

    async def _after_truncation(self, feed: Feed, file: _OpenFile, cursor: _Cursor) -> _Cursor:
        """The file was truncated (copy-truncate rotation): finish the copy, then start over."""
        copy = self._find_continuation(cursor)
        if copy is None:
            log.warning(
                "jsonl source %s was truncated and no rotated copy holds what followed line %d "
                "(anything written after it before the truncation is lost); reading it from "
                "the top",
                self.path,
                cursor.line,
            )
        else:
            try:
                done = await self._read(feed, copy, replace(cursor, inode=copy.inode))
            finally:
                copy.close()
            log.warning(
                "jsonl source %s was truncated: finished its copy %s (%d lines), now reading "
                "%s from the top",
                self.path,
                copy.path.name,
                done.line - cursor.line,
                self.path.name,
            )
        cursor = _Cursor.start(file.inode)
        await feed.advance(cursor.dump())
        return cursor

    async def _read(self, feed: Feed, file: _OpenFile, cursor: _Cursor) -> _Cursor:
        """Handle the whole lines after the cursor; an unterminated last line waits, as the
        writer may be in the middle of it."""
        if file.size() <= cursor.offset:
            return cursor
        tail = file.tail_before(cursor.offset)
        file.handle.seek(cursor.offset)
        buffer = b""
        skipping = False  # inside an over-long line: drop bytes until its newline
        while chunk := file.handle.read(READ_CHUNK):
            buffer += chunk
            while (newline := buffer.find(b"\n")) >= 0:
                raw, buffer = buffer[: newline + 1], buffer[newline + 1 :]
                tail = _slide(tail, raw)
                cursor = _Cursor(
                    cursor.offset + len(raw), cursor.line + 1, cursor.inode, _fingerprint(tail)
                )
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
                tail = _slide(tail, buffer)
                offset = cursor.offset + len(buffer)
                cursor = _Cursor(offset, cursor.line, cursor.inode, _fingerprint(tail))
                buffer = b""
            await asyncio.sleep(0)  # a long backlog of skipped bytes must not hog the loop
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
