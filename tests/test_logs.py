"""LOG_FORMAT=json: one JSON object per record on stderr, with the record's context (source,
chat, post), secrets hidden in every field; plain lines stay as they were."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.logs import PLAIN_FORMAT, current_context, log_context, make_formatter
from bot.redact import HIDDEN, RedactingFilter, Redactor
from bot.storage import SqliteStorage
from tests.botapi import FakeBotAPI
from tests.test_process import BOUND, PROJECT_ROOT, USER, Service, _env, _post, _run_cli

SECRET = "987654321:AAHsecretSECRETsecret-secret_SECRET1234"
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through the JSON formatter and the redaction filter, as the CLI sets
    them up on the root logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    redact = Redactor([SECRET])
    handler.setFormatter(make_formatter("json", redact))
    handler.addFilter(RedactingFilter(redact))
    logger = logging.getLogger("tests.json")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def _records(text: str) -> list[dict[str, object]]:
    """Every line parsed as JSON (failing on any line that is not one object)."""
    records = []
    for line in text.splitlines():
        record = json.loads(line)
        assert isinstance(record, dict), line
        records.append(record)
    return records


def test_a_record_is_one_json_line_with_time_level_logger_and_message(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_log
    logger.info("post %s: %d alert(s)\nsecond line", "a/b/1", 3)
    (record,) = _records(stream.getvalue())
    assert set(record) == {"time", "level", "logger", "message"}
    assert TIME.match(str(record["time"]))
    assert record["level"] == "INFO"
    assert record["logger"] == "tests.json"
    assert record["message"] == "post a/b/1: 3 alert(s)\nsecond line"


def test_secrets_are_hidden_in_the_message_the_traceback_and_the_context(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_log
    logger.warning("calling https://api.telegram.org/bot%s/getMe", SECRET)
    try:
        raise RuntimeError(f"request to /bot{SECRET}/sendMessage failed")
    except RuntimeError:
        with log_context(source=f"rss:https://example.org/{SECRET}"):
            logger.exception("could not send")
    output = stream.getvalue()
    assert SECRET not in output
    assert SECRET.split(":")[1] not in output
    message, failure = _records(output)
    assert message["message"] == f"calling https://api.telegram.org/bot{HIDDEN}/getMe"
    assert failure["level"] == "ERROR"
    assert "Traceback" in str(failure["exc"])
    assert f"RuntimeError: request to /bot{HIDDEN}/sendMessage failed" in str(failure["exc"])
    assert failure["source"] == f"rss:https://example.org/{HIDDEN}"


async def test_the_context_tags_records_in_nested_blocks_tasks_and_threads(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_log
    started = asyncio.Event()
    go_on = asyncio.Event()

    async def reader() -> None:
        started.set()
        await go_on.wait()  # runs on after the block that created it has ended
        logger.info("read")
        with log_context(post="jsonl/ch/7"):
            logger.info("stored")

    with log_context(source="jsonl:/tmp/posts.jsonl"):
        task = asyncio.create_task(reader())
        await started.wait()
        with log_context(chat_id=42):
            logger.info("sending")
            logger.info("sending to another", extra={"chat_id": 43})  # extra= wins
            await asyncio.to_thread(logger.info, "in a thread")
        logger.info("after")
    logger.info("outside")
    assert current_context() == {}
    go_on.set()
    await task

    fields = [
        {k: v for k, v in record.items() if k in ("source", "chat_id", "post", "message")}
        for record in _records(stream.getvalue())
    ]
    source = "jsonl:/tmp/posts.jsonl"
    assert fields == [
        {"message": "sending", "source": source, "chat_id": 42},
        {"message": "sending to another", "source": source, "chat_id": 43},
        {"message": "in a thread", "source": source, "chat_id": 42},
        {"message": "after", "source": source},
        {"message": "outside"},
        {"message": "read", "source": source},
        {"message": "stored", "source": source, "post": "jsonl/ch/7"},
    ]


def test_plain_lines_are_as_they_were() -> None:
    formatter = make_formatter("plain")
    assert PLAIN_FORMAT == "%(asctime)s %(levelname)s %(name)s: %(message)s"
    record = logging.LogRecord("bot.app", logging.INFO, __file__, 1, "Dozor is running", (), None)
    with log_context(source="jsonl:x", chat_id=1):
        line = formatter.format(record)
    assert line.endswith(" INFO bot.app: Dozor is running")


def test_the_cli_logging_writes_json_lines_to_stderr(tmp_path: Path) -> None:
    """`_configure_logging` in a process of its own (as `dozor` sets it up), context across
    a task, an exception, and secrets."""
    script = textwrap.dedent(
        f"""
        import asyncio, logging
        from bot.cli import _configure_logging
        from bot.logs import log_context
        from bot.redact import Redactor

        _configure_logging("INFO", Redactor([{SECRET!r}]), "json")
        log = logging.getLogger("bot.sources.rss")

        async def main():
            with log_context(source="rss:https://example.org/feed"):
                await asyncio.create_task(poll())

        async def poll():
            with log_context(post="rss/example.org/42"):
                log.info("post stored", extra={{"chat_id": 7}})
                try:
                    raise OSError("GET https://api.telegram.org/bot{SECRET}/getMe: reset")
                except OSError:
                    log.exception("token {SECRET} refused")

        asyncio.run(main())
        logging.getLogger("bot.app").debug("not shown at INFO")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=BOUND,
        cwd=tmp_path,
        env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": ""},
        check=True,
    )
    assert SECRET not in done.stderr
    assert SECRET.split(":")[1] not in done.stderr
    stored, failed = _records(done.stderr)
    assert stored == {
        "time": stored["time"],
        "level": "INFO",
        "logger": "bot.sources.rss",
        "message": "post stored",
        "source": "rss:https://example.org/feed",
        "chat_id": 7,
        "post": "rss/example.org/42",
    }
    assert TIME.match(str(stored["time"]))
    assert failed["message"] == f"token {HIDDEN} refused"
    assert f"OSError: GET https://api.telegram.org/bot{HIDDEN}/getMe: reset" in str(failed["exc"])
    assert (failed["source"], failed["post"]) == (
        "rss:https://example.org/feed",
        "rss/example.org/42",
    )
    assert "chat_id" not in failed


def test_dozor_sources_list_logs_json_and_a_refusal_is_a_json_line(tmp_path: Path) -> None:
    env = {**_env(tmp_path, "http://127.0.0.1:9"), "LOG_FORMAT": "json"}
    done = _run_cli(env, tmp_path, "sources", "list")
    assert done.returncode == 0
    assert done.stdout == "no sources are watched\n"
    records = _records(done.stderr)
    assert any(r["message"] == "applying migration 0001_init.sql" for r in records)
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
        assert TIME.match(str(record["time"]))

    Path(env["DOZOR_DB"]).unlink()
    Path(env["DOZOR_DB"]).write_bytes(b"this is not an SQLite database\n" * 200)
    done = _run_cli(env, tmp_path, "sources", "list")
    assert done.returncode == 2
    (refusal,) = [r for r in _records(done.stderr) if r["level"] == "CRITICAL"]
    assert refusal["logger"] == "bot.cli"
    assert str(refusal["message"]).startswith(f"dozor: the database {env['DOZOR_DB']} is corrupt")


async def test_dozor_run_logs_json_lines_with_library_errors_redacted(tmp_path: Path) -> None:
    """The service against a Bot API that answers garbage: aiohttp's error names the URL,
    token and all; every stderr line is a JSON record, and the token is hidden."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        writer.close()

    broken = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = broken.sockets[0].getsockname()[1]
    env = {**_env(tmp_path, f"http://127.0.0.1:{port}"), "LOG_FORMAT": "json"}
    (tmp_path / "posts.jsonl").write_text("", encoding="utf-8")
    service = Service(env, tmp_path)
    try:
        await service.start(wait="cannot reach the Bot API")
        assert await service.terminate() == 0
    finally:
        broken.close()
        if service.process is not None and service.process.returncode is None:
            await service.kill()
    log = service.log.read_text(encoding="utf-8")
    token = env["BOT_TOKEN"]
    assert token not in log
    assert token.split(":")[1] not in log
    records = _records(log)
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
    (unreachable, *_) = [r for r in records if "cannot reach the Bot API" in str(r["message"])]
    assert unreachable["level"] == "WARNING"
    assert unreachable["logger"] == "bot.app"
    assert "ClientResponseError" in str(unreachable["message"])
    assert HIDDEN in str(unreachable["message"])
    assert any("Dozor is running" in str(r["message"]) for r in records)


async def test_the_service_tags_its_records_with_the_source_the_post_and_the_chat(
    tmp_path: Path, api: FakeBotAPI
) -> None:
    """A real `dozor run` in JSON mode: the record of a post's queued alert names the source
    and the post, the record of its chat blocking the bot names the chat."""
    env = {**_env(tmp_path, api.base_url), "LOG_FORMAT": "json"}
    storage = await SqliteStorage.open(env["DOZOR_DB"])
    try:
        await storage.upsert_subscriber(USER, "reader")
        await storage.add_subscription(USER, "Oreshnik")
    finally:
        await storage.close()
    posts = tmp_path / "posts.jsonl"
    posts.write_text("", encoding="utf-8")
    api.block_chat(USER)
    service = Service(env, tmp_path)
    try:
        await service.start()
        with posts.open("a", encoding="utf-8") as handle:
            handle.write(_post(1, "Oreshnik on the move"))
        await service.wait_log("blocked the bot")
        assert await service.terminate() == 0
    finally:
        if service.process is not None and service.process.returncode is None:
            await service.kill()
    records = _records(service.log.read_text(encoding="utf-8"))
    (queued,) = [r for r in records if "alert(s) queued" in str(r["message"])]
    assert queued["source"] == f"jsonl:{posts}"
    assert queued["post"] == "jsonl/milinfo/1"
    (blocked,) = [r for r in records if "blocked the bot" in str(r["message"])]
    assert blocked["chat_id"] == USER
    (watching,) = [r for r in records if str(r["message"]).startswith("watching ")]
    assert watching["source"] == f"jsonl:{posts}"
