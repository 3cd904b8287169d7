"""Secrets never reach a log line or a stored error, with the errors the libraries really raise."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot

from bot.app import make_bot
from bot.config import Settings
from bot.delivery.outbox import OutboxWorker
from bot.delivery.sender import TelegramSender
from bot.domain import Post, Span
from bot.redact import HIDDEN, Redactor, install_log_redaction
from bot.storage import SqliteStorage, Storage
from bot.storage.sqlite import MatchRecord

TOKEN = "987654321:AAHsecretSECRETsecret-secret_SECRET1234"
BEARER = "AAAAAAAAAAAAAAAAAAAAAJ%2BsecretBearerToken%3Dvalue"
API_HASH = "0123456789abcdef0123456789abcdef"
CHAT = 4242

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _bad_status_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A malformed HTTP answer: aiohttp's error carries the request URL, token and all."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    await writer.drain()
    writer.close()


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The connection is reset as soon as the request arrives."""
    await reader.readuntil(b"\r\n\r\n")
    writer.transport.abort()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads the request and never answers (the client times out)."""
    await reader.readuntil(b"\r\n\r\n")
    await reader.read()  # until the client gives up and closes
    writer.close()


@pytest.fixture
async def broken_api(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    handler: Handler = request.param
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()


@pytest.fixture
def log_output() -> AsyncIterator[io.StringIO]:
    """What the service's log would show: a root handler with the redaction filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    install_log_redaction(Redactor([TOKEN, BEARER, API_HASH]))
    yield stream  # type: ignore[misc]
    root.removeHandler(handler)
    root.setLevel(previous)


def _bot(base: str) -> Bot:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, bot_token=TOKEN, telegram_api_base=base
    )
    return make_bot(settings)


async def _queue_alert(storage: Storage) -> None:
    await storage.upsert_subscriber(CHAT, "reader")
    subscription = await storage.add_subscription(CHAT, "Oreshnik")
    assert subscription is not None
    post = Post("jsonl", "milinfo", "1", datetime.now(UTC), "Oreshnik", "https://t.me/milinfo/1")
    await storage.save_post(post, [MatchRecord(subscription.id, CHAT, "Oreshnik", (Span(0, 8),))])


@pytest.mark.parametrize(
    "broken_api",
    [_bad_status_line, _reset, _silent],
    ids=["malformed answer", "connection reset", "timeout"],
    indirect=True,
)
async def test_bot_api_failures_leave_no_token_in_logs_or_the_database(
    broken_api: str, tmp_path: Path, log_output: io.StringIO
) -> None:
    storage = await SqliteStorage.open(
        tmp_path / "dozor.sqlite3", redact=Redactor([TOKEN, BEARER, API_HASH])
    )
    bot = _bot(broken_api)
    try:
        await _queue_alert(storage)
        sender = TelegramSender(bot, timeout=1)
        worker = OutboxWorker(storage, sender, ZoneInfo("UTC"), asyncio.Event())
        assert await worker.send_due() == 0  # the send failed and was postponed
        row = await storage._one("SELECT last_error, sent_at FROM outbox")
        assert row is not None
        assert row["sent_at"] is None
        stored = row["last_error"]
        # The failure is recorded in words an operator can use...
        assert stored is not None
        assert "Network" in stored or "Decode" in stored, stored
        try:
            await bot.get_me(request_timeout=1)
        except Exception:
            logging.getLogger("bot.test").exception("getMe failed")
    finally:
        await bot.session.close()
        await storage.close()
    logged = log_output.getvalue()
    assert "getMe failed" in logged
    # ...but neither the token nor its secret half is anywhere.
    secret_half = TOKEN.split(":")[1]
    for text in (stored, logged):
        assert TOKEN not in text
        assert secret_half not in text


def test_the_malformed_answer_really_carries_the_token() -> None:
    """Guard for the test above: aiohttp's message includes the URL (so redaction is needed)."""

    async def attempt() -> str:
        server = await asyncio.start_server(_bad_status_line, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        bot = _bot(f"http://127.0.0.1:{port}")
        try:
            await bot.get_me(request_timeout=2)
        except Exception as exc:
            return str(exc)
        finally:
            await bot.session.close()
            server.close()
        return ""

    assert TOKEN in asyncio.run(attempt())


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"POST http://api/bot{TOKEN}/sendMessage failed", "/sendMessage failed"),
        ("another bot 123456789:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA here", "another bot"),
        (f"Authorization: Bearer {BEARER}", "Authorization: Bearer"),
        ("Authorization: Bearer xyzxyzxyzxyzxyzxyzxyz", "Authorization: Bearer"),
        (f"api_hash={API_HASH} rejected", "rejected"),
        ("code sent to +7 916 123-45-67 via SMS", "via SMS"),
        ("session 1" + "A" * 300 + "== saved", "saved"),
    ],
)
def test_secrets_and_secret_shaped_text_are_hidden(text: str, kept: str) -> None:
    redact = Redactor([TOKEN, BEARER, API_HASH])
    hidden = redact(text)
    assert HIDDEN in hidden
    assert kept in hidden
    for secret in (TOKEN, BEARER, API_HASH, "916 123-45-67", "A" * 300, "AAAAAAAAAAAAAAAAAAAA"):
        assert secret not in hidden


@pytest.mark.parametrize(
    "text",
    [
        "chat -1001234567890 blocked the bot",
        "post militaryrussiaru/36594: 3 alert(s) queued",
        "Telegram asked to wait 30 s",
        "+30 posts since 12:00",
    ],
)
def test_ordinary_log_text_is_left_alone(text: str) -> None:
    assert Redactor([TOKEN])(text) == text


def test_tracebacks_and_arguments_are_redacted(log_output: io.StringIO) -> None:
    log = logging.getLogger("bot.test")
    try:
        raise RuntimeError(f"request to /bot{TOKEN}/getMe failed")
    except RuntimeError:
        log.exception("failed with %s and %r", API_HASH, {"token": TOKEN})
    output = log_output.getvalue()
    assert "failed with" in output
    assert "RuntimeError" in output
    assert TOKEN not in output
    assert API_HASH not in output
