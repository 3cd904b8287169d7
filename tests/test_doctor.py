"""`dozor doctor`: one line per check, exit 0 only when all pass, and nothing changed.

Each test configures a deployment through the environment (no `.env`), builds what it needs
(a database, a session file, a stand-in Bot API) and reads the report `run_doctor` prints.
`run_doctor` runs its own event loop, so it runs in a thread while the test's loop serves
the stand-in Bot API.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import socket
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from telethon.crypto import AuthKey
from telethon.sessions import SQLiteSession

from bot import doctor
from bot.doctor import run_doctor
from bot.storage import SqliteStorage
from bot.storage.coordination import LEADER
from bot.storage.lock import ProcessLock
from bot.storage.postgres import PostgresStorage
from bot.storage.postgres.coordination import PostgresCoordination
from tests.botapi import FakeBotAPI
from tests.conftest import TEST_TOKEN
from tests.contract.conftest import fresh_database
from tests.filesystems import make_unwritable, unwritable_folder
from tests.test_process import _env, _run_cli_async

NAMES = ["settings", "bot token", "database", "telegram session", "sources", "outbox"]
API_HASH = "0123456789abcdef0123456789abcdef"


# No real setting and no `.env` in the working folder may leak into a test.
pytestmark = pytest.mark.usefixtures("clean_environment")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "dozor.sqlite3"


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch, api: FakeBotAPI, db: Path) -> Path:
    """A configuration the stand-in Bot API accepts, on the SQLite file `db`."""
    monkeypatch.setenv("BOT_TOKEN", TEST_TOKEN)
    monkeypatch.setenv("TELEGRAM_API_BASE", api.base_url)
    monkeypatch.setenv("DOZOR_DB", str(db))
    return db


async def run(*, as_json: bool = False) -> tuple[int, str]:
    """The exit status and the report of `dozor doctor`."""
    out = io.StringIO()
    status = await asyncio.to_thread(run_doctor, out, as_json=as_json, env_file=None)
    return status, out.getvalue()


def lines(report: str) -> dict[str, str]:
    """Each check's line, by its name, in report order."""
    found: dict[str, str] = {}
    for line in report.splitlines():
        if line[:2] in ("✓ ", "✗ ", "– "):
            found[line[2:].split(":", 1)[0]] = line
    assert list(found) == NAMES, report
    return found


def items(report: str, name: str) -> list[str]:
    """The indented lines under a check's line."""
    rows = report.splitlines()
    start = next(i for i, row in enumerate(rows) if row[2:].startswith(f"{name}:"))
    following = []
    for row in rows[start + 1 :]:
        if not row.startswith("    "):
            break
        following.append(row.strip())
    return following


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under `folder`: its mode and a digest of its content."""
    return {
        str(path.relative_to(folder)): (
            path.stat().st_mode,
            hashlib.sha256(path.read_bytes()).hexdigest(),
        )
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def names(folder: Path) -> list[str]:
    """Everything under `folder` (files and folders), by relative path."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


async def make_database(path: Path, *, source_errors: int = 0, stopped: bool = False) -> None:
    """A migrated database with a chat, a source read well (or failing) and one digest
    waiting to be sent."""
    storage = await SqliteStorage.open(path)
    try:
        await storage.add_source("tgweb:militaryrussiaru", "tgweb", origin="cli")
        (info,) = await storage.list_sources()
        await storage.record_source_ok(info.id)
        for _ in range(source_errors):
            await storage.record_source_error(info.id, "HTTP 503 from t.me", stopped=stopped)
        await storage.upsert_subscriber(501, "Anna")
        await storage.queue_digest(501, ["Your digest"], until=datetime.now(UTC))
    finally:
        await storage.close()


def set_outbox_times(path: Path, created: datetime, due: datetime) -> None:
    """Make the waiting messages look queued at `created`, due at `due` (as a service that
    stopped sending, or a muted chat, leaves them)."""
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(
            "UPDATE outbox SET created_at = ?, next_attempt_at = ? WHERE sent_at IS NULL",
            (_ts(created), _ts(due)),
        )


def write_notes(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text("these are my notes, not a database\n" * 200)


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


# --- a good configuration ---------------------------------------------------------------------


async def test_a_good_configuration_passes_every_check_and_changes_nothing(
    deployment: Path, tmp_path: Path
) -> None:
    await make_database(deployment)
    before = snapshot(tmp_path)

    status, report = await run()

    assert status == 0, report
    found = lines(report)
    assert found["settings"].startswith("✓ settings: read from the environment")
    assert found["bot token"].startswith("✓ bot token: accepted: the bot is @dozor_test_bot")
    assert found["database"] == (
        f"✓ database: SQLite {deployment}: migrated (version"
        f" {max(doctor.known_versions('bot.storage'))}), writable; no service running"
    )
    assert found["telegram session"].startswith("– telegram session: skipped (TG_API_ID")
    assert found["sources"] == "✓ sources: 1 source watched, all reading well"
    assert items(report, "sources")[0].startswith("✓ tgweb:militaryrussiaru")
    assert "read OK" in items(report, "sources")[0]
    assert found["outbox"].startswith("✓ outbox: 1 waiting, the oldest queued just now")
    assert report.rstrip().endswith("all checks passed")
    assert snapshot(tmp_path) == before  # no -wal, -shm, lock or session file appeared
    assert TEST_TOKEN.split(":")[1] not in report


async def test_no_database_yet_is_no_fault_and_is_not_created(
    deployment: Path, tmp_path: Path
) -> None:
    status, report = await run()

    assert status == 0, report
    found = lines(report)
    assert found["database"] == (
        f"✓ database: no database yet at {deployment} — `dozor run` creates it"
    )
    assert found["sources"] == "– sources: skipped (no database yet)"
    assert found["outbox"] == "– outbox: skipped (no database yet)"
    assert names(tmp_path) == []  # not even the folder


# --- settings ---------------------------------------------------------------------------------


async def test_a_malformed_token_is_a_settings_error_and_later_checks_are_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOT_TOKEN", "not-a-token")

    status, report = await run()

    assert status == 1
    found = lines(report)
    assert found["settings"].startswith("✗ settings: invalid setting BOT_TOKEN: expected a token")
    assert found["settings"].endswith(
        "— correct them in .env or the environment (`.env.example` documents each)"
    )
    for name in NAMES[1:]:
        assert found[name] == f"– {name}: skipped (the settings are invalid)"


async def test_each_bad_setting_gets_a_line_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", TEST_TOKEN)
    monkeypatch.setenv("DIGEST_TIME", "25:00")
    monkeypatch.setenv("TIMEZONE", "Mars/Olympus")

    status, report = await run()

    assert status == 1
    assert lines(report)["settings"].startswith("✗ settings: 2 settings are invalid —")
    problems = items(report, "settings")
    assert len(problems) == 2
    assert problems[0].startswith("invalid setting DIGEST_TIME: expected HH:MM")
    assert problems[1].startswith("invalid setting TIMEZONE: unknown time zone 'Mars/Olympus'")


async def test_a_missing_token_fails_the_settings_but_the_database_is_still_checked(
    monkeypatch: pytest.MonkeyPatch, db: Path
) -> None:
    monkeypatch.setenv("DOZOR_DB", str(db))
    await make_database(db)

    status, report = await run()

    assert status == 1
    found = lines(report)
    assert found["settings"] == (
        "✗ settings: BOT_TOKEN is not set — put the token from @BotFather in .env"
    )
    assert found["bot token"] == "– bot token: skipped (BOT_TOKEN is not set)"
    assert found["database"].startswith("✓ database: SQLite")
    assert found["outbox"].startswith("✓ outbox:")


# --- the bot token ----------------------------------------------------------------------------


async def test_a_token_the_bot_api_refuses(deployment: Path, api: FakeBotAPI) -> None:
    api.token = "654321:ANOTHER-token-the-server-accepts"

    status, report = await run()

    assert status == 1
    line = lines(report)["bot token"]
    assert line.startswith("✗ bot token: the Bot API refused BOT_TOKEN (Unauthorized)")
    assert "— check it with @BotFather" in line
    assert TEST_TOKEN.split(":")[1] not in report


async def test_a_bot_api_answering_with_a_server_error_cannot_be_reached(
    deployment: Path, api: FakeBotAPI
) -> None:
    api.fail_next("getMe", status=502, description="Bad Gateway")

    status, report = await run()

    assert status == 1
    line = lines(report)["bot token"]
    assert line.startswith(f"✗ bot token: cannot reach the Bot API at {api.base_url}: ")
    assert "Bad Gateway" in line


async def test_a_bot_api_asking_to_wait_is_reported_as_such(
    deployment: Path, api: FakeBotAPI
) -> None:
    api.fail_next("getMe", status=429, description="Too Many Requests", retry_after=7)

    status, report = await run()

    assert status == 1
    line = lines(report)["bot token"]
    assert line.startswith(f"✗ bot token: the Bot API at {api.base_url} asks to wait 7 s")


async def test_a_bot_api_nobody_listens_on_cannot_be_reached(
    deployment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with closed_port() as port:
        monkeypatch.setenv("TELEGRAM_API_BASE", f"http://127.0.0.1:{port}")
        status, report = await run()

    assert status == 1
    line = lines(report)["bot token"]
    assert line.startswith(f"✗ bot token: cannot reach the Bot API at http://127.0.0.1:{port}")
    assert "TELEGRAM_API_BASE" in line


# --- the SQLite database ----------------------------------------------------------------------


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder whose files can be made unwritable (`make_unwritable`)."""
    with unwritable_folder(tmp_path / "ro") as folder:
        yield folder


async def test_a_read_only_database_fails_and_is_still_read(
    deployment: Path, monkeypatch: pytest.MonkeyPatch, read_only_folder: Path
) -> None:
    database = read_only_folder / "dozor.sqlite3"
    monkeypatch.setenv("DOZOR_DB", str(database))
    await make_database(database)
    make_unwritable(read_only_folder)

    status, report = await run()

    assert status == 1
    line = lines(report)["database"]
    assert line.startswith(f"✗ database: {database} is read-only: ")
    assert line.endswith(
        "— make the file, its folder and their file system writable by the user running Dozor"
    )
    # Readable all the same: what the service would find is reported.
    assert lines(report)["sources"].startswith("✓ sources: 1 source watched")
    assert lines(report)["outbox"].startswith("✓ outbox: 1 waiting")


async def test_a_database_folder_that_cannot_be_created(
    deployment: Path, monkeypatch: pytest.MonkeyPatch, read_only_folder: Path
) -> None:
    database = read_only_folder / "data" / "dozor.sqlite3"
    monkeypatch.setenv("DOZOR_DB", str(database))
    make_unwritable(read_only_folder)

    status, report = await run()

    assert status == 1
    line = lines(report)["database"]
    assert line.startswith(f"✗ database: no database yet at {database}, and it cannot be created")
    assert "or change DOZOR_DB" in line


async def test_a_database_in_use_by_a_running_service_is_reported_not_failed(
    deployment: Path,
) -> None:
    await make_database(deployment)
    lock = ProcessLock.acquire(deployment)
    service = await SqliteStorage.open(deployment)  # its connection: -wal and -shm exist
    try:
        files = names(deployment.parent)
        status, report = await run()
        assert names(deployment.parent) == files
    finally:
        await service.close()
        lock.release()

    assert status == 0, report
    line = lines(report)["database"]
    assert line.startswith(f"✓ database: SQLite {deployment}: migrated")
    assert line.endswith(f"in use by the running service (pid {os.getpid()})")
    assert lines(report)["outbox"].startswith("✓ outbox: 1 waiting")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            "DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM"
            " schema_migrations)",
            "1 migration not applied yet",
        ),
        (
            "INSERT INTO schema_migrations VALUES (9999, '2030-01-01')",
            "it was migrated by a newer Dozor (migration 9999",
        ),
    ],
)
async def test_a_database_whose_migrations_differ_from_the_code(
    deployment: Path, change: str, expected: str
) -> None:
    await make_database(deployment)
    with contextlib.closing(sqlite3.connect(deployment)) as connection, connection:
        connection.execute(change)
    before = snapshot(deployment.parent)

    status, report = await run()

    assert status == 1
    found = lines(report)
    assert found["database"].startswith(f"✗ database: {expected}")
    assert found["sources"] == "– sources: skipped (the database is not migrated)"
    assert found["outbox"] == "– outbox: skipped (the database is not migrated)"
    assert snapshot(deployment.parent) == before  # no migration was applied


async def test_a_file_that_is_not_a_database(deployment: Path) -> None:
    write_notes(deployment)

    status, report = await run()

    assert status == 1
    line = lines(report)["database"]
    assert line.startswith(f"✗ database: {deployment} is corrupt or not a Dozor database")
    assert line.endswith("— restore it from a backup, or move it away to start with an empty one")
    assert lines(report)["outbox"] == "– outbox: skipped (the database check failed)"


async def test_another_programs_sqlite_file_is_not_a_dozor_database(deployment: Path) -> None:
    deployment.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(deployment)) as connection, connection:
        connection.execute("CREATE TABLE notes (text TEXT)")

    status, report = await run()

    assert status == 1
    assert lines(report)["database"].startswith(
        f"✗ database: {deployment} is not a Dozor database (it has no schema_migrations table)"
    )


# --- the Telegram session ---------------------------------------------------------------------


@pytest.fixture
def telegram(monkeypatch: pytest.MonkeyPatch, deployment: Path, tmp_path: Path) -> Path:
    """TG_API_ID and TG_API_HASH set; TG_SESSION named without `.session`, as telethon
    allows: the file is `<name>.session`."""
    monkeypatch.setenv("TG_API_ID", "12345")
    monkeypatch.setenv("TG_API_HASH", API_HASH)
    monkeypatch.setenv("TG_SESSION", str(tmp_path / "telegram"))
    return tmp_path / "telegram.session"


def make_session(path: Path, port: int, *, logged_in: bool) -> None:
    """A telethon session file pointing at a loopback port, with an auth key or without."""
    session = SQLiteSession(str(path))
    session.set_dc(2, "127.0.0.1", port)
    if logged_in:
        session.auth_key = AuthKey(os.urandom(256))
    session.save()
    session.close()


async def test_no_session_file_is_not_logged_in(telegram: Path, deployment: Path) -> None:
    await make_database(deployment)

    status, report = await run()

    assert status == 1
    assert lines(report)["telegram session"] == (
        f"✗ telegram session: not logged in: no session file {telegram} — run `dozor login`"
        " (it asks for the phone, the code and the 2FA password)"
    )
    assert telegram.name not in names(telegram.parent)


async def test_a_session_without_a_login_is_not_logged_in_and_stays_as_it_was(
    telegram: Path, deployment: Path
) -> None:
    await make_database(deployment)
    make_session(telegram, 443, logged_in=False)
    before = snapshot(telegram.parent)

    status, report = await run()

    assert status == 1
    line = lines(report)["telegram session"]
    assert line.startswith(f"✗ telegram session: not logged in: {telegram} holds no login")
    assert "run `dozor login`" in line
    assert snapshot(telegram.parent) == before


async def test_a_login_telegram_cannot_be_reached_for_is_reported_not_waited_for(
    telegram: Path, deployment: Path
) -> None:
    await make_database(deployment)
    with closed_port() as port:
        make_session(telegram, port, logged_in=True)
        before = snapshot(telegram.parent)
        status, report = await run()

    assert status == 1
    line = lines(report)["telegram session"]
    assert line.startswith(f"✗ telegram session: cannot reach Telegram (DC 2 at 127.0.0.1:{port})")
    assert snapshot(telegram.parent) == before  # telethon worked on a copy


async def test_a_telegram_server_that_never_answers_is_given_up_after_the_bound(
    telegram: Path, deployment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doctor, "NETWORK_TIMEOUT", 1)
    await make_database(deployment)
    with silent_port() as port:
        make_session(telegram, port, logged_in=True)
        status, report = await run()

    assert status == 1
    assert lines(report)["telegram session"].startswith(
        f"✗ telegram session: cannot reach Telegram (DC 2 at 127.0.0.1:{port}):"
        " no answer within 1 s"
    )


# --- sources ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("errors", "stopped"), [(3, False), (1, True)])
async def test_a_failing_source_fails_with_its_error(
    deployment: Path, errors: int, stopped: bool
) -> None:
    await make_database(deployment, source_errors=errors, stopped=stopped)

    status, report = await run()

    assert status == 1
    line = lines(report)["sources"]
    assert line.startswith("✗ sources: 1 of 1 watched source in trouble — check each ✗ source")
    (item,) = items(report, "sources")
    assert item.startswith("✗ tgweb:militaryrussiaru")
    reading = "stopped since" if stopped else "failing since"
    assert f"; {reading} " in item
    assert ": HTTP 503 from t.me" in item
    assert "; last read OK just now" in item


async def test_a_source_silent_for_long_fails(deployment: Path) -> None:
    await make_database(deployment)
    two_days_ago = _ts(datetime.now(UTC) - timedelta(days=2))
    with contextlib.closing(sqlite3.connect(deployment)) as connection, connection:
        connection.execute("UPDATE sources SET added_at = ?", (two_days_ago,))

    status, report = await run()

    assert status == 1
    assert lines(report)["sources"].startswith("✗ sources: 1 of 1 watched source in trouble")
    (item,) = items(report, "sources")
    assert item.endswith("— silent: no new post since 2 days ago")


async def test_one_failed_read_is_shown_but_is_no_problem_yet(deployment: Path) -> None:
    await make_database(deployment, source_errors=1)

    status, report = await run()

    assert status == 0, report
    assert lines(report)["sources"] == "✓ sources: 1 source watched, all reading well"
    (item,) = items(report, "sources")
    assert item.startswith("✓ tgweb:militaryrussiaru")
    assert "failing since" in item
    assert "HTTP 503 from t.me" in item


async def test_a_source_in_the_settings_that_is_not_a_source(
    deployment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES", "tgweb:militaryrussiaru, rss:ftp://example.org/feed")
    await make_database(deployment)

    status, report = await run()

    assert status == 1
    line = lines(report)["sources"]
    assert line.startswith("✗ sources: 1 in SOURCES cannot be read — correct SOURCES in .env")
    assert items(report, "sources")[0] == (
        "✗ SOURCES 'rss:ftp://example.org/feed': an rss: source needs an http(s) URL"
    )


# --- the outbox -------------------------------------------------------------------------------


async def test_a_stuck_outbox_fails(deployment: Path) -> None:
    await make_database(deployment)
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    set_outbox_times(deployment, created=hour_ago, due=hour_ago)

    status, report = await run()

    assert status == 1
    line = lines(report)["outbox"]
    assert line.startswith("✗ outbox: stuck: 1 waiting, the oldest queued 1 h ago, due since 1 h")
    assert "0 set aside" in line
    assert "— start the service (`dozor run`) if it is not running" in line


async def test_messages_held_on_purpose_are_not_stuck(deployment: Path) -> None:
    await make_database(deployment)
    now = datetime.now(UTC)
    set_outbox_times(deployment, created=now - timedelta(hours=1), due=now + timedelta(hours=1))

    status, report = await run()

    assert status == 0, report
    assert lines(report)["outbox"].startswith(
        "✓ outbox: 1 waiting, the oldest queued 1 h ago, held on purpose"
    )


# --- the JSON report --------------------------------------------------------------------------


async def test_the_json_report(deployment: Path, api: FakeBotAPI) -> None:
    await make_database(deployment)
    api.token = "654321:ANOTHER-token-the-server-accepts"

    status, report = await run(as_json=True)

    assert status == 1
    document = json.loads(report)
    assert document["ok"] is False
    checks = {check["name"]: check for check in document["checks"]}
    assert [check["name"] for check in document["checks"]] == NAMES
    assert checks["bot token"]["ok"] is False
    assert checks["bot token"]["detail"].startswith("the Bot API refused BOT_TOKEN")
    assert checks["bot token"]["fix"].startswith("check it with @BotFather")
    assert checks["database"]["ok"] is True
    assert checks["database"]["fix"] is None
    assert checks["telegram session"]["ok"] is None
    assert checks["telegram session"]["detail"].startswith("TG_API_ID and TG_API_HASH")
    assert checks["sources"]["items"][0].startswith("✓ tgweb:militaryrussiaru")
    assert set(checks["outbox"]) == {"name", "ok", "detail", "fix", "items"}


# --- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A database of this test's own on the test server, with a password in its URL (the
    server trusts loopback and ignores it), dropped afterwards."""
    with fresh_database("dozor_doctor") as url, psycopg.connect(url) as connection:
        user = connection.execute("SELECT current_user").fetchone()
        assert user is not None
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        yield f"postgresql://{user[0]}:doctor-secret-pw@{host}:{parts.port or 5432}{parts.path}"


@pytest.fixture
async def leader(postgres_url: str) -> AsyncIterator[PostgresCoordination]:
    """A migrated database with a source read well and a worker holding the leader role."""
    storage = await PostgresStorage.open(postgres_url)
    try:
        await storage.add_source("tgweb:militaryrussiaru", "tgweb", origin="cli")
        (info,) = await storage.list_sources()
        await storage.record_source_ok(info.id)
    finally:
        await storage.close()
    coordination = await PostgresCoordination.open(postgres_url, telegram=False)
    assert await coordination.try_role(LEADER)
    yield coordination
    await coordination.close()


async def test_a_postgres_database_with_a_leader(
    deployment: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
    leader: PostgresCoordination,
) -> None:
    monkeypatch.setenv("DATABASE_URL", postgres_url)

    status, report = await run()

    assert status == 0, report
    found = lines(report)
    where = postgres_url.split("//")[1].replace(":doctor-secret-pw", "")
    assert f"database: PostgreSQL {where}" in found["settings"]
    version = max(doctor.known_versions("bot.storage.postgres"))
    assert found["database"] == (
        f"✓ database: PostgreSQL {where}: migrated (version {version}), writable;"
        f" leader: the worker on server process {leader.worker} (1 worker connected)"
    )
    assert found["sources"] == "✓ sources: 1 source watched, all reading well"
    assert found["outbox"].startswith("✓ outbox: nothing waiting to be sent")
    assert "doctor-secret-pw" not in report


async def test_an_empty_postgres_database_is_left_empty(
    deployment: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", postgres_url)

    status, report = await run()

    assert status == 0, report
    assert lines(report)["database"].endswith("no Dozor tables yet — `dozor run` creates them")
    assert lines(report)["outbox"] == "– outbox: skipped (no Dozor tables yet)"
    async with await psycopg.AsyncConnection.connect(postgres_url) as connection:
        cursor = await connection.execute(
            "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'"
        )
        assert await cursor.fetchone() == (0,)


async def test_an_unreachable_postgres_server(
    deployment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with closed_port() as port:
        monkeypatch.setenv("DATABASE_URL", f"postgresql://dozor:pg-secret-pw@127.0.0.1:{port}/x")
        status, report = await run()

    assert status == 1
    line = lines(report)["database"]
    assert line.startswith(f"✗ database: cannot reach PostgreSQL at dozor@127.0.0.1:{port}/x (")
    assert line.endswith(
        "— check DATABASE_URL, that the server runs and that it accepts this user"
    )
    assert "pg-secret-pw" not in report


async def test_the_command_line_reports_and_sets_its_exit_status(
    tmp_path: Path, api: FakeBotAPI
) -> None:
    """`dozor doctor --json` as a command (one run: each start imports aiogram and telethon);
    the report and the exit status of a good configuration are the in-process tests'."""
    env = _env(tmp_path, api.base_url)
    storage = await SqliteStorage.open(env["DOZOR_DB"])
    await storage.close()
    api.token = "654321:ANOTHER-token-the-server-accepts"  # ours is refused: exit status 1
    status, output = await _run_cli_async(env, tmp_path, "doctor", "--json")
    assert status == 1, output
    report = json.loads(output)
    assert not report["ok"]
    assert [c["name"] for c in report["checks"] if c["ok"] is False] == ["bot token"]
    passed = [c["name"] for c in report["checks"] if c["ok"]]
    assert passed == ["settings", "database", "sources", "outbox"]
