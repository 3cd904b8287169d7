"""`dozor doctor`: a health report of a deployment's configuration, changing nothing.

Six checks, in order: the settings parse; the Bot API accepts BOT_TOKEN; the database is
reachable, writable, migrated (and who holds it); the Telegram session is logged in; the
watched sources read well; the outbox is not stuck. Each is one line of the report:
`✓ name: detail`, `✗ name: what is wrong — what to do`, or `– name: skipped (why)`.

Nothing is written: no migration is applied, no database file or folder is created, the
session file is read from a copy, and the database is read through a read-only connection
(SQLite: `mode=ro`, `immutable` when no process has it open; PostgreSQL: read-only
transactions). Every network check gives up after `NETWORK_TIMEOUT` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

# Everything the checks use is imported here, not in the checks: an import there (aiogram
# takes seconds) would hold the event loop while the other checks' time bounds run.
import aiosqlite
import psycopg
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from telethon import TelegramClient

from bot.app import make_bot
from bot.config import Settings, SettingsError, load_settings
from bot.i18n import ENGLISH, Catalog
from bot.redact import Redactor
from bot.sources.health import FAILING_AFTER, ago, describe, warning
from bot.sources.links import parse_source
from bot.storage.lock import holder
from bot.storage.postgres import PostgresStorage
from bot.storage.postgres.coordination import ROLE_SPACE, ROLES, TELEGRAM_WORKER, WORKER
from bot.storage.postgres.engine import Connection
from bot.storage.postgres.engine import where as postgres_where
from bot.storage.protocol import Storage
from bot.storage.records import migration_scripts
from bot.storage.sqlite import SqliteStorage, open_reader

NETWORK_TIMEOUT = 10  # seconds a network check (or a read of a remote database) may take
OUTBOX_STUCK_AFTER = timedelta(minutes=15)  # a due message this much overdue: nobody sends
SETTINGS, BOT_TOKEN, DATABASE = "settings", "bot token", "database"
TELEGRAM, SOURCES, OUTBOX = "telegram session", "sources", "outbox"
PASSED, FAILED, SKIPPED = "✓", "✗", "–"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report. `ok`: True passed, False failed, None skipped (then `detail`
    says why). `items`: lines shown under it (each source, each bad setting)."""

    name: str
    ok: bool | None
    detail: str
    fix: str | None = None
    items: tuple[str, ...] = ()

    @classmethod
    def passed(cls, name: str, detail: str, items: tuple[str, ...] = ()) -> Check:
        return cls(name, True, detail, None, items)

    @classmethod
    def failed(cls, name: str, detail: str, fix: str, items: tuple[str, ...] = ()) -> Check:
        return cls(name, False, detail, fix, items)

    @classmethod
    def skipped(cls, name: str, why: str) -> Check:
        return cls(name, None, why)

    def line(self) -> str:
        if self.ok is None:
            return f"{SKIPPED} {self.name}: skipped ({self.detail})"
        if self.ok:
            return f"{PASSED} {self.name}: {self.detail}"
        return f"{FAILED} {self.name}: {self.detail} — {self.fix}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "fix": self.fix,
            "items": list(self.items),
        }

    def redacted(self, redact: Callable[[str], str]) -> Check:
        return replace(
            self,
            detail=redact(self.detail),
            fix=None if self.fix is None else redact(self.fix),
            items=tuple(redact(item) for item in self.items),
        )


@dataclass
class Reading:
    """The database as the sources and outbox checks read it: a `Storage` on a read-only
    connection, or None and why not."""

    storage: Storage | None = None
    why: str = "the database check failed"
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def on_close(self, close: Callable[[], Awaitable[None]]) -> None:
        """Run `close` (a connection's, a pool's) when the report is done."""
        self._closers.append(close)

    async def close(self) -> None:
        for close in reversed(self._closers):
            with contextlib.suppress(Exception):
                await close()
        self._closers.clear()


# --- the entry points -------------------------------------------------------------------------


def run_doctor(out: TextIO, *, as_json: bool = False, env_file: str | None = ".env") -> int:
    """`dozor doctor [--json]`: run every check, print the report to `out`; 0 when every
    check passed (skipped ones do not count), 1 otherwise."""
    checks = asyncio.run(diagnose(env_file))
    print(render(checks, as_json=as_json), file=out)
    return 0 if all(check.ok is not False for check in checks) else 1


def render(checks: list[Check], *, as_json: bool = False) -> str:
    """The report: one line per check (and its items indented), or one JSON object."""
    ok = all(check.ok is not False for check in checks)
    if as_json:
        document = {"ok": ok, "checks": [check.as_dict() for check in checks]}
        return json.dumps(document, ensure_ascii=False, indent=2)
    lines: list[str] = []
    for check in checks:
        lines.append(check.line())
        lines.extend(f"    {item}" for item in check.items)
    failed = sum(check.ok is False for check in checks)
    lines.append(
        "all checks passed" if ok else f"{failed} of {len(checks)} checks failed (✗ above)"
    )
    return "\n".join(lines)


async def diagnose(env_file: str | None = ".env") -> list[Check]:
    """Every check in report order; the network ones run side by side, each bounded."""
    settings, first = check_settings(env_file)
    if settings is None:
        why = "the settings are invalid"
        later = (BOT_TOKEN, DATABASE, TELEGRAM, SOURCES, OUTBOX)
        return [first.redacted(Redactor()), *(Check.skipped(name, why) for name in later)]
    redact = Redactor(settings.secrets())
    reading = Reading()
    try:
        token, database, session = await asyncio.gather(
            _guarded(BOT_TOKEN, check_bot_token(settings)),
            _guarded(DATABASE, check_database(settings, reading, redact)),
            _guarded(TELEGRAM, check_telegram_session(settings)),
        )
        sources = await _guarded(SOURCES, check_sources(settings, reading))
        outbox = await _guarded(OUTBOX, check_outbox(reading))
    finally:
        await reading.close()
    checks = [first, token, database, session, sources, outbox]
    return [check.redacted(redact) for check in checks]


async def _guarded(name: str, check: Awaitable[Check]) -> Check:
    """The check's own result, or a failed line when it broke in a way it did not foresee
    (the report is still printed in full)."""
    try:
        return await check
    except TimeoutError:
        return Check.failed(
            name,
            f"no result within {NETWORK_TIMEOUT} s",
            "run `dozor doctor` again; if this persists, the database or the network is slow",
        )
    except Exception as exc:
        return Check.failed(
            name,
            f"the check could not finish ({type(exc).__name__}: {exc})",
            "run `dozor doctor` again; if this persists, report it with this line",
        )


def counted(count: int, noun: str) -> str:
    """`1 source`, `3 sources`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# --- 1. settings ------------------------------------------------------------------------------


def check_settings(env_file: str | None) -> tuple[Settings | None, Check]:
    """Every setting parses (one item per bad variable), and BOT_TOKEN is set."""
    try:
        settings = load_settings(env_file)
    except SettingsError as exc:
        problems = exc.problems
        fix = "correct them in .env or the environment (`.env.example` documents each)"
        if len(problems) == 1:
            return None, Check.failed(SETTINGS, problems[0], fix)
        detail = f"{len(problems)} settings are invalid"
        return None, Check.failed(SETTINGS, detail, fix, tuple(problems))
    try:
        settings.require_token()
    except SettingsError:
        return settings, Check.failed(
            SETTINGS, "BOT_TOKEN is not set", "put the token from @BotFather in .env"
        )
    origin = "the environment"
    if env_file and Path(env_file).is_file():
        origin += f" and {env_file}"
    url = settings.database_value()
    engine = f"PostgreSQL {postgres_where(url)}" if url else f"SQLite {settings.dozor_db}"
    return settings, Check.passed(SETTINGS, f"read from {origin}; database: {engine}")


# --- 2. the bot token -------------------------------------------------------------------------


async def check_bot_token(settings: Settings) -> Check:
    """`getMe` through aiogram, as the service calls the Bot API: the token is accepted and
    names the bot. A refused token and a server that cannot be reached are told apart."""
    if settings.bot_token is None:
        return Check.skipped(BOT_TOKEN, "BOT_TOKEN is not set")
    base = settings.telegram_api_base
    unreachable = f"check the network (a firewall, a proxy) and TELEGRAM_API_BASE ({base})"
    bot = make_bot(settings)
    try:
        async with asyncio.timeout(NETWORK_TIMEOUT):
            me = await bot.get_me(request_timeout=NETWORK_TIMEOUT)
    except (TelegramUnauthorizedError, TelegramNotFound) as exc:
        return Check.failed(
            BOT_TOKEN,
            f"the Bot API refused BOT_TOKEN ({exc.message})",
            "check it with @BotFather (/mybots → API Token) and put it in .env",
        )
    except TelegramRetryAfter as exc:
        return Check.failed(
            BOT_TOKEN,
            f"the Bot API at {base} asks to wait {exc.retry_after} s (too many requests)",
            "run `dozor doctor` again after that",
        )
    except TimeoutError:
        detail = f"cannot reach the Bot API at {base}: no answer within {NETWORK_TIMEOUT} s"
        return Check.failed(BOT_TOKEN, detail, unreachable)
    except (TelegramServerError, TelegramNetworkError) as exc:
        detail = f"cannot reach the Bot API at {base}: {exc.message}"
        return Check.failed(BOT_TOKEN, detail, unreachable)
    except (TelegramAPIError, ClientDecodeError) as exc:
        return Check.failed(
            BOT_TOKEN,
            f"the Bot API at {base} gave an unexpected answer ({exc})",
            "check that TELEGRAM_API_BASE names a Bot API server",
        )
    finally:
        await bot.session.close()
    return Check.passed(BOT_TOKEN, f"accepted: the bot is @{me.username} ({base})")


# --- 3. the database --------------------------------------------------------------------------


async def check_database(settings: Settings, reading: Reading, redact: Redactor) -> Check:
    """The configured engine's database: reachable, writable, migrated, and who holds it.
    Leaves `reading` open on it for the later checks when its schema is the code's."""
    url = settings.database_value()
    if url:
        return await check_postgres(url, reading, redact)
    return await check_sqlite(settings.dozor_db, reading, redact)


def known_versions(package: str) -> set[int]:
    """The migrations this code knows for an engine (`bot.storage`, `bot.storage.postgres`),
    by the numbers their files start with, as the engines apply them."""
    return {version for version, _ in migration_scripts(package)}


def schema_problem(applied: set[int], known: set[int]) -> tuple[str, str] | None:
    """What is wrong with a database's migrations (and what to do), None when up to date."""
    pending = sorted(known - applied)
    unknown = sorted(applied - known)
    if unknown:
        return (
            f"it was migrated by a newer Dozor (migration {unknown[-1]}; this one knows up to"
            f" {max(known)})",
            "upgrade Dozor to the version that wrote it",
        )
    if pending:
        names = ", ".join(f"{version:04d}" for version in pending)
        return (
            f"{counted(len(pending), 'migration')} not applied yet ({names}; it is at"
            f" {max(applied, default=0)}, this Dozor at {max(known)})",
            "start the service (`dozor run` applies them at start), or restart it if it runs",
        )
    return None


async def check_sqlite(path: Path, reading: Reading, redact: Redactor) -> Check:
    """SQLite (DOZOR_DB): the file exists (a missing one is no fault: `dozor run` creates
    it), it and its folder can be written, its migrations are applied, and whether a
    running service holds its lock (normal: reported, not failed)."""
    file = SqliteFile.look(path)
    if file.is_folder:
        return Check.failed(
            DATABASE,
            f"DOZOR_DB {path} is a folder",
            f"set DOZOR_DB to a file path such as {path}/dozor.sqlite3",
        )
    blocked = file.blocker
    if not file.exists:
        reading.why = "no database yet"
        if blocked:
            return Check.failed(
                DATABASE,
                f"no database yet at {path}, and it cannot be created there: {blocked}",
                "make that folder writable by the user running Dozor, or change DOZOR_DB",
            )
        return Check.passed(DATABASE, f"no database yet at {path} — `dozor run` creates it")
    try:
        connection = await open_reader(file.read_only_uri, uri=True)
        reading.on_close(connection.close)
        applied = await sqlite_versions(connection)
    except sqlite3.OperationalError as exc:  # cannot open or read (permissions, a lock)
        return Check.failed(
            DATABASE,
            f"cannot read {path} ({exc})",
            "check that DOZOR_DB names the database and that the user running Dozor may read it",
        )
    except sqlite3.DatabaseError as exc:
        return Check.failed(
            DATABASE,
            f"{path} is corrupt or not a Dozor database ({exc})",
            "restore it from a backup, or move it away to start with an empty one",
        )
    if applied is None:
        return Check.failed(
            DATABASE,
            f"{path} is not a Dozor database (it has no schema_migrations table)",
            "point DOZOR_DB at Dozor's database, or move this file away",
        )
    problems: list[tuple[str, str]] = []
    if blocked:
        problems.append(
            (
                f"{path} is read-only: {blocked}",
                "make the file, its folder and their file system writable by the user "
                "running Dozor",
            )
        )
    schema = schema_problem(applied, known_versions("bot.storage"))
    if schema:
        problems.append(schema)
        reading.why = "the database is not migrated"
    else:
        reading.storage = SqliteStorage(connection, redact=redact)
    pid = file.service_pid
    if pid is None:
        running = "no service running"
    elif pid > 0:
        running = f"in use by the running service (pid {pid})"
    else:
        running = "in use by a running service (its pid is not recorded)"
    if problems:
        detail = "; ".join(what for what, _ in problems) + f"; {running}"
        return Check.failed(DATABASE, detail, "; ".join(fix for _, fix in problems))
    return Check.passed(
        DATABASE,
        f"SQLite {path}: migrated (version {max(applied)}), writable; {running}",
    )


@dataclass(frozen=True, slots=True)
class SqliteFile:
    """What the file system says about DOZOR_DB (looked at once, before any await)."""

    is_folder: bool
    exists: bool
    blocker: str | None  # why it cannot be written (or created), if it cannot
    read_only_uri: str  # how to open it without writing or creating anything
    # Who holds its process lock (bot.storage.lock): the running service, whose pid it
    # wrote (-1: unknown); None when no service runs. Looked at with a shared lock taken
    # and dropped at once, never created or held.
    service_pid: int | None

    @classmethod
    def look(cls, path: Path) -> SqliteFile:
        # A `mode=ro` connection to a WAL database creates its -wal and -shm files when
        # they are missing, and leaves them behind. They are missing only when no
        # connection has the file open (a service keeps them while it runs), and the file
        # then holds everything: it is read as `immutable`, which needs neither. (A service
        # starting during these few reads could make them fail, as a read error or as
        # corruption: a second run tells.)
        query = "mode=ro" if Path(f"{path}-wal").exists() else "mode=ro&immutable=1"
        return cls(
            is_folder=path.is_dir(),
            exists=path.exists(),
            blocker=write_blocker(path),
            read_only_uri=f"{path.resolve().as_uri()}?{query}",
            service_pid=holder(path) if path.is_file() else None,
        )


def write_blocker(path: Path) -> str | None:
    """Why the database at `path` (or its folder, where SQLite also writes its -wal and -shm
    files) cannot be written or created by this user, or None."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if os.statvfs(existing).f_flag & os.ST_RDONLY:
            return f"{existing} is on a file system mounted read-only"
    except OSError as exc:
        return f"cannot look at {existing} ({exc.strerror})"
    folder = existing if existing.is_dir() else existing.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable"
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if file.exists() and not os.access(file, os.R_OK | os.W_OK):
            return f"{file} is not writable"
    return None


async def sqlite_versions(connection: aiosqlite.Connection) -> set[int] | None:
    """The migrations applied (`schema_migrations`, as `SqliteStorage._migrate` records
    them), or None when the file has no such table."""
    async with connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ) as cursor:
        if await cursor.fetchone() is None:
            return None
    async with connection.execute("SELECT version FROM schema_migrations") as cursor:
        return {int(row[0]) for row in await cursor.fetchall()}


async def check_postgres(url: str, reading: Reading, redact: Redactor) -> Check:
    """PostgreSQL (DATABASE_URL): the server answers, this user may write Dozor's tables (not
    a read-only standby), the migrations are applied, and which worker leads (holds the
    leader role's advisory lock, read from pg_locks; no lock is taken)."""
    where = postgres_where(url)
    reach = "check DATABASE_URL, that the server runs and that it accepts this user"
    try:
        async with asyncio.timeout(NETWORK_TIMEOUT + 1):
            connection = await psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=NETWORK_TIMEOUT, row_factory=dict_row
            )
    except TimeoutError:
        detail = f"cannot reach PostgreSQL at {where}: no answer within {NETWORK_TIMEOUT} s"
        return Check.failed(DATABASE, detail, reach)
    except (psycopg.Error, OSError) as exc:
        reason = _postgres_reason(exc, url)
        return Check.failed(DATABASE, f"cannot reach PostgreSQL at {where} ({reason})", reach)
    try:
        async with asyncio.timeout(NETWORK_TIMEOUT):
            facts = await postgres_facts(connection)
    except (TimeoutError, psycopg.Error) as exc:
        reason = "no answer in time" if isinstance(exc, TimeoutError) else str(exc)
        return Check.failed(
            DATABASE,
            f"cannot read PostgreSQL at {where} ({_postgres_reason(reason, url)})",
            reach,
        )
    finally:
        with contextlib.suppress(Exception):
            await connection.close()
    problems: list[tuple[str, str]] = []
    if facts.standby:
        problems.append(
            ("the server is a read-only standby", "point DATABASE_URL at the primary server")
        )
    elif facts.read_only:
        problems.append(
            (
                "sessions are read-only by default (default_transaction_read_only)",
                "turn default_transaction_read_only off for this user and database",
            )
        )
    if facts.unwritable:
        tables = ", ".join(facts.unwritable[:5])
        noun = "table" if len(facts.unwritable) == 1 else "tables"
        problems.append(
            (
                f"this user may not write the {noun} {tables}",
                "GRANT INSERT, UPDATE, DELETE on Dozor's tables to the user in DATABASE_URL",
            )
        )
    if facts.applied is None:
        reading.why = "no Dozor tables yet"
        if not facts.may_create:
            problems.append(
                (
                    "no Dozor tables yet, and this user may not create them",
                    "grant the user in DATABASE_URL CREATE on its schema, or use the"
                    " schema's owner",
                )
            )
        elif not problems:
            return Check.passed(
                DATABASE,
                f"PostgreSQL {where}: no Dozor tables yet — `dozor run` creates them",
            )
    else:
        schema = schema_problem(facts.applied, known_versions("bot.storage.postgres"))
        if schema:
            problems.append(schema)
            reading.why = "the database is not migrated"
        else:  # readable as this code reads it, even if it cannot be written
            await open_postgres_reading(url, reading, redact)
    if problems:
        detail = "; ".join(what for what, _ in problems) + f"; {facts.workers_line()}"
        return Check.failed(DATABASE, detail, "; ".join(fix for _, fix in problems))
    assert facts.applied is not None
    return Check.passed(
        DATABASE,
        f"PostgreSQL {where}: migrated (version {max(facts.applied)}), writable;"
        f" {facts.workers_line()}",
    )


def _postgres_reason(exc: BaseException | str, url: str) -> str:
    """An error's text without the URL (a malformed one is quoted back by libpq)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.replace(url, "DATABASE_URL")


@dataclass(frozen=True, slots=True)
class PostgresFacts:
    """What `check_postgres` learns from the server in one short read-only session."""

    standby: bool
    read_only: bool
    may_create: bool
    unwritable: list[str]
    applied: set[int] | None  # None: no schema_migrations table
    leader: int | None  # the server process of the leader's lock connection
    workers: int

    def workers_line(self) -> str:
        if self.leader is not None:
            return (
                f"leader: the worker on server process {self.leader}"
                f" ({counted(self.workers, 'worker')} connected)"
            )
        if self.workers:
            return f"{counted(self.workers, 'worker')} connected, none leads yet"
        return "no worker running"


async def postgres_facts(connection: psycopg.AsyncConnection[Any]) -> PostgresFacts:
    """Read what `check_postgres` judges: the server's settings first (whether sessions
    are read-only by default), then only in read-only transactions."""
    cursor = await connection.execute(
        "SELECT pg_is_in_recovery() AS standby,"
        " current_setting('default_transaction_read_only') = 'on' AS read_only,"
        " COALESCE(has_schema_privilege(current_schema(), 'CREATE'), false) AS may_create,"
        " to_regclass('schema_migrations') IS NOT NULL AS migrated"
    )
    row = await cursor.fetchone()
    assert row is not None
    await _read_only_session(connection)
    cursor = await connection.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND NOT ("
        " has_table_privilege(format('%I.%I', schemaname, tablename), 'INSERT')"
        " AND has_table_privilege(format('%I.%I', schemaname, tablename), 'UPDATE')"
        " AND has_table_privilege(format('%I.%I', schemaname, tablename), 'DELETE'))"
        " ORDER BY tablename"
    )
    unwritable = [str(table["tablename"]) for table in await cursor.fetchall()]
    applied: set[int] | None = None
    if row["migrated"]:
        cursor = await connection.execute("SELECT version FROM schema_migrations")
        applied = {int(version["version"]) for version in await cursor.fetchall()}
    cursor = await connection.execute(
        "SELECT (SELECT locks.pid FROM pg_locks AS locks WHERE locks.locktype = 'advisory'"
        "  AND locks.granted AND locks.objsubid = 2"
        "  AND locks.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        "  AND locks.classid::bigint = %s AND locks.objid::bigint = %s LIMIT 1) AS leader,"
        " (SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
        "  AND application_name = ANY(%s)) AS workers",
        (ROLE_SPACE, ROLES["leader"], [WORKER, TELEGRAM_WORKER]),
    )
    workers = await cursor.fetchone()
    assert workers is not None
    return PostgresFacts(
        standby=bool(row["standby"]),
        read_only=bool(row["read_only"]),
        may_create=bool(row["may_create"]),
        unwritable=unwritable,
        applied=applied,
        leader=workers["leader"],
        workers=int(workers["workers"]),
    )


async def _read_only_session(connection: psycopg.AsyncConnection[Any]) -> None:
    # Times in UTC as the engine reads them; nothing this session runs may write.
    await connection.execute("SET TimeZone TO 'UTC'")
    await connection.execute("SET default_transaction_read_only = on")
    await connection.execute(f"SET statement_timeout = '{NETWORK_TIMEOUT}s'")


async def open_postgres_reading(url: str, reading: Reading, redact: Redactor) -> None:
    """`PostgresStorage` on a one-connection pool whose every transaction is read-only (its
    `open()` would migrate: the pool is built here instead)."""
    pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=1,
        kwargs={"row_factory": dict_row, "autocommit": True, "prepare_threshold": None},
        configure=_read_only_session,
        open=False,
        timeout=NETWORK_TIMEOUT,
        name="dozor-doctor",
    )
    try:
        await pool.open(wait=True, timeout=NETWORK_TIMEOUT)
    except (PoolTimeout, psycopg.Error) as exc:
        with contextlib.suppress(Exception):
            await pool.close()
        reading.why = f"cannot open a reading connection ({_postgres_reason(exc, url)})"
        return
    reading.on_close(pool.close)
    reading.storage = PostgresStorage(pool, redact=redact)


# --- 4. the Telegram session ------------------------------------------------------------------


class _Collected(logging.Handler):
    """Keeps the messages of the records it is handed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _collected(logger: str) -> Iterator[list[str]]:
    """A library's warnings during the block, kept out of the log (they are about the
    check's own attempts) and handed to the check: telethon says why it could not connect
    only there."""
    log = logging.getLogger(logger)
    handler = _Collected()
    level, propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.WARNING)
    log.propagate = False
    try:
        yield handler.messages
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


def session_file(settings: Settings) -> Path:
    """TG_SESSION as telethon names the file (it adds `.session` when missing)."""
    name = str(settings.tg_session)
    return Path(name if name.endswith(".session") else f"{name}.session")


def saved_login(path: Path, copy: Path) -> tuple[int, str, int] | None:
    """Copy the session file to `copy` (telethon writes to any session it opens) and read,
    from the copy, the data centre (id, address, port) its login is with; None when it
    holds no auth key (never logged in). Raises OSError when the file cannot be copied
    (FileNotFoundError: there is none), sqlite3.Error when it is not a session."""
    shutil.copyfile(path, copy)
    with contextlib.closing(sqlite3.connect(f"{copy.as_uri()}?mode=ro", uri=True)) as db:
        row = db.execute("SELECT dc_id, server_address, port, auth_key FROM sessions").fetchone()
    if row is None or not row[3]:
        return None
    return int(row[0]), str(row[1]), int(row[2])


async def check_telegram_session(settings: Settings) -> Check:
    """Only with TG_API_ID and TG_API_HASH: the session file (TG_SESSION) holds a login
    (offline: an auth key in its `sessions` table), and Telegram still accepts it (online,
    on a copy of the file, so that the file itself is never written)."""
    credentials = settings.telegram_credentials
    if credentials is None:
        return Check.skipped(
            TELEGRAM,
            "TG_API_ID and TG_API_HASH are not set: telegram: sources use the web preview",
        )
    path = session_file(settings)
    login = "run `dozor login` (it asks for the phone, the code and the 2FA password)"
    with tempfile.TemporaryDirectory(prefix="dozor-doctor-") as folder:
        copy = Path(folder) / "copy.session"
        try:
            key = saved_login(path, copy)
        except FileNotFoundError:
            return Check.failed(TELEGRAM, f"not logged in: no session file {path}", login)
        except (OSError, sqlite3.Error) as exc:
            return Check.failed(
                TELEGRAM,
                f"cannot read the session file {path} ({exc})",
                f"make it readable by the user running Dozor, or move it away and {login}",
            )
        if key is None:
            return Check.failed(TELEGRAM, f"not logged in: {path} holds no login", login)
        return await _session_online(path, copy, key, credentials, login)


async def _session_online(
    path: Path,
    copy: Path,
    key: tuple[int, str, int],
    credentials: tuple[int, str],
    login: str,
) -> Check:
    """Connect with the copied session and ask Telegram whether it is authorised."""
    dc, address, port = key
    server = f"DC {dc} at {address}:{port}"
    unreachable = "check the network and that a firewall lets this host reach Telegram"
    client = TelegramClient(
        str(copy),
        *credentials,
        timeout=NETWORK_TIMEOUT,
        connection_retries=0,
        retry_delay=0,
        request_retries=1,
        auto_reconnect=False,
        receive_updates=False,
    )
    who = ""
    with _collected("telethon") as warnings:
        try:
            async with asyncio.timeout(NETWORK_TIMEOUT):
                await client.connect()
                authorised = bool(await client.is_user_authorized())
                if authorised:
                    me = await client.get_me()
                    username = getattr(me, "username", None)
                    who = f"@{username}" if username else f"user {getattr(me, 'id', '?')}"
        except TimeoutError:
            detail = f"cannot reach Telegram ({server}): no answer within {NETWORK_TIMEOUT} s"
            return Check.failed(TELEGRAM, detail, unreachable)
        except OSError as exc:  # ConnectionError: telethon gave up, having logged why
            reasons = [text.split(" failed: ", 1)[1] for text in warnings if " failed: " in text]
            reason = reasons[-1] if reasons else str(exc) or type(exc).__name__
            detail = f"cannot reach Telegram ({server}): {reason}"
            return Check.failed(TELEGRAM, detail, unreachable)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 5)
            # The copy's connection: the temporary folder is deleted next.
            with contextlib.suppress(Exception):
                client.session.close()
    if not authorised:
        return Check.failed(
            TELEGRAM,
            f"not logged in: Telegram no longer accepts the login in {path}"
            " (logged out or revoked)",
            login,
        )
    return Check.passed(TELEGRAM, f"logged in as {who} ({path})")


# --- 5. sources -------------------------------------------------------------------------------


async def check_sources(settings: Settings, reading: Reading) -> Check:
    """Every spec in SOURCES and in the database parses, and no watched source has a
    problem as `/sources` sees one (bot.sources.health.warning: stopped, failing three
    times in a row, silent for long); each watched source gets a line, as in
    `dozor sources list`."""
    items: list[str] = []
    bad_settings = 0
    for spec in settings.sources:
        try:
            parse_source(spec)
        except ValueError as exc:
            bad_settings += 1
            items.append(f"{FAILED} SOURCES {spec!r}: {exc}")
    fix_settings = "correct SOURCES in .env"
    if reading.storage is None:
        if bad_settings:
            return Check.failed(
                SOURCES,
                f"{bad_settings} of the {len(settings.sources)} in SOURCES cannot be read",
                fix_settings,
                tuple(items),
            )
        configured = (
            f"; the {len(settings.sources)} in SOURCES are valid" if settings.sources else ""
        )
        return Check.skipped(SOURCES, reading.why + configured)
    async with asyncio.timeout(NETWORK_TIMEOUT):
        infos = await reading.storage.list_sources()
    t = Catalog().texts(ENGLISH)  # an operator's terminal: English
    now = datetime.now(UTC)
    troubled = 0
    for info in infos:
        line = describe(t, info, now)
        try:
            parse_source(info.spec)
        except ValueError as exc:
            troubled += 1
            items.append(f"{FAILED} {line} — the stored spec is not a source: {exc}")
            continue
        problem = warning(t, info, now)
        if problem is None:
            items.append(f"{PASSED} {line}")
            continue
        troubled += 1
        if info.stopped_at is None and info.failures < FAILING_AFTER:
            line += f" — {problem}"  # silent: the line shows failures, not silence
        items.append(f"{FAILED} {line}")
    if bad_settings or troubled:
        fixes = [fix_settings] if bad_settings else []
        if troubled:
            fixes.append(
                "check each ✗ source's site or account, or stop watching it"
                " (`dozor sources remove SPEC`)"
            )
        whats = [f"{bad_settings} in SOURCES cannot be read"] if bad_settings else []
        if troubled:
            whats.append(f"{troubled} of {counted(len(infos), 'watched source')} in trouble")
        return Check.failed(SOURCES, "; ".join(whats), "; ".join(fixes), tuple(items))
    if not infos:
        return Check.passed(SOURCES, "none watched yet (add some with `dozor sources add`)")
    detail = f"{counted(len(infos), 'source')} watched, all reading well"
    return Check.passed(SOURCES, detail, tuple(items))


# --- 6. the outbox ----------------------------------------------------------------------------


async def check_outbox(reading: Reading) -> Check:
    """Messages are leaving: the oldest one waiting was queued less than
    `OUTBOX_STUCK_AFTER` ago, or is held on purpose (a muted chat, quiet hours, a retry
    later). Stuck: it is that old and a chat's queue has been due that long, unsent."""
    if reading.storage is None:
        return Check.skipped(OUTBOX, reading.why)
    storage = reading.storage
    async with asyncio.timeout(NETWORK_TIMEOUT):
        counts = await storage.outbox_counts()
        oldest = await storage.oldest_pending_at()
        due = await storage.next_attempt_at()
    t = Catalog().texts(ENGLISH)
    now = datetime.now(UTC)
    aside = f"{counts['failed']} set aside (refused by Telegram, kept to look into)"
    if oldest is None:
        return Check.passed(OUTBOX, f"nothing waiting to be sent; {aside}")
    waiting = f"{counts['pending']} waiting, the oldest queued {ago(t, oldest, now)}"
    if now - oldest <= OUTBOX_STUCK_AFTER:
        return Check.passed(OUTBOX, f"{waiting}; {aside}")
    if due is not None and now - due > OUTBOX_STUCK_AFTER:
        return Check.failed(
            OUTBOX,
            f"stuck: {waiting}, due since {ago(t, due, now)} and not sent; {aside}",
            "start the service (`dozor run`) if it is not running; if it is, its log says"
            " why sending fails (the bot token, the network, the Bot API)",
        )
    return Check.passed(
        OUTBOX,
        f"{waiting}, held on purpose (muted chats, quiet hours, retries after errors); {aside}",
    )
