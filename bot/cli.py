"""The `dozor` command line: the service, digests now, the offline demo, one-off matching."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from bot.config import Settings, SettingsError, load_settings
from bot.logs import LogFormat, make_formatter
from bot.redact import Redactor, install_log_redaction, url_password
from bot.storage.lock import StorageError, as_storage_error

if TYPE_CHECKING:
    from bot.domain import SourceSpec
    from bot.storage.protocol import Storage

DIGEST_DRAIN_LIMIT = 120.0  # seconds `digest --now` keeps trying before leaving it to the service
IMPORT_PROGRESS_FROM = 20  # `sources import` shows its progress above this many sources
IMPORT_PROGRESS = "adding sources"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dozor",
        description="Watch sources for what you track and alert through a Telegram bot.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the service: bot, sources, alerts and digests")
    digest = commands.add_parser("digest", help="send digests")
    digest.add_argument(
        "--now",
        action="store_true",
        required=True,
        help="send every subscriber with matches their digest at once",
    )
    digest.add_argument(
        "--chat",
        type=int,
        metavar="ID",
        help="only this chat's digest (its chat id, as /stats or the logs show it)",
    )
    commands.add_parser("demo", help="run the pipeline offline on bundled sample posts")
    commands.add_parser(
        "login", help="log the Telegram user account in once (phone, code, 2FA); writes TG_SESSION"
    )
    sources = commands.add_parser("sources", help="list, add, remove or import watched sources")
    actions = sources.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every watched source and its health")
    add = actions.add_parser("add", help="watch a source: a spec, @channel or link")
    add.add_argument("spec")
    remove = actions.add_parser("remove", help="stop watching a source (its posts stay)")
    remove.add_argument("spec")
    importer = actions.add_parser(
        "import", help="add every Telegram channel and X account an article links to"
    )
    importer.add_argument("file", help="the article's text, or - for standard input")
    migrate = commands.add_parser(
        "migrate",
        help="copy a SQLite deployment into PostgreSQL (resumable; checked by row counts)",
    )
    migrate.add_argument(
        "--from", dest="source", required=True, metavar="sqlite:PATH", help="the SQLite file"
    )
    migrate.add_argument(
        "--to", dest="target", required=True, metavar="postgresql://…", help="the database"
    )
    doctor = commands.add_parser(
        "doctor",
        help="check the configuration, the Bot API, the database, the session, the sources and"
        " the outbox; changes nothing (exit 0 only when all is well)",
    )
    doctor.add_argument("--json", action="store_true", help="one JSON object, for machines")
    backup = commands.add_parser(
        "backup",
        help="copy the SQLite database to PATH, consistently, while the service runs",
    )
    backup.add_argument("path", metavar="PATH", help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="replace PATH if it exists")
    restore = commands.add_parser(
        "restore",
        help="replace the SQLite database with a backup (the service stopped; the current "
        "database is kept beside it)",
    )
    restore.add_argument("path", metavar="PATH", help="a file written by dozor backup")
    match = commands.add_parser(
        "match",
        help="print the ids of JSON-lines posts ({'id':..., 'text':...}) that match a query",
    )
    match.add_argument("query", help="a query, e.g. 'Oreshnik OR \"INF Treaty\"'")
    match.add_argument("--file", "-f", default="-", help="JSON-lines file (default: stdin)")
    match.add_argument("--explain", action="store_true", help="also print the words matched")
    return parser


async def run_sources(
    settings: Settings, args: argparse.Namespace, out: TextIO, redact: Redactor
) -> int:
    """`dozor sources ...` on the database; a running service picks changes up within a minute."""
    from bot.i18n import ENGLISH, Catalog
    from bot.sources.health import describe, warning
    from bot.sources.links import find_sources, parse_source
    from bot.storage.opening import open_storage

    storage = await open_storage(settings.dozor_db, settings.database_value(), redact=redact)
    try:
        if args.action == "list":
            now = datetime.now(UTC)
            infos = await storage.list_sources()
            t = Catalog().texts(ENGLISH)  # an operator's terminal: English
            for info in infos:
                problem = warning(t, info, now)
                print(("! " if problem else "  ") + describe(t, info, now), file=out)
                if problem:
                    print(f"    {problem}", file=out)
            if not infos:
                print("no sources are watched", file=out)
            return 0
        if args.action in ("add", "remove"):
            try:
                spec = parse_source(args.spec)
            except ValueError as exc:
                print(f"dozor sources: {exc}", file=sys.stderr)
                return 2
            if args.action == "add":
                added = await storage.add_source(spec.text, spec.kind, origin="cli")
                print(f"{'added' if added else 'already watched'}: {spec.text}", file=out)
            else:
                removed = await storage.remove_source(spec.text)
                print(f"{'removed' if removed else 'not watched'}: {spec.text}", file=out)
            return 0
        try:
            text = sys.stdin.read() if args.file == "-" else _read_text(args.file)
        except OSError as exc:
            print(f"dozor sources: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return 2
        specs = find_sources(text)
        await _import(storage, specs, out)
        if not specs:
            print("no Telegram channel or X account links found", file=out)
        return 0
    finally:
        await storage.close()


async def _import(storage: Storage, specs: Sequence[SourceSpec], out: TextIO) -> None:
    """`sources import`: a line per source; of many links, with a progress bar on a terminal
    (plain progress lines on stderr otherwise, so stdout keeps only the sources) and a total."""
    from bot.progress import lines_only, progress_printer

    many = len(specs) > IMPORT_PROGRESS_FROM
    added_count = 0
    with progress_printer(out, sys.stderr) if many else lines_only(out) as (report, say):
        report(IMPORT_PROGRESS, 0, len(specs))
        for done, spec in enumerate(specs, start=1):
            added = await storage.add_source(spec.text, spec.kind, origin="import")
            added_count += int(added)
            say(f"{'added' if added else 'already watched'}: {spec.text}")
            report(IMPORT_PROGRESS, done, len(specs))
    if not many:
        return
    print(
        f"{len(specs)} sources found: {added_count} added, "
        f"{len(specs) - added_count} already watched",
        file=sys.stderr,
    )


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read(5_000_000)


def run_match(query: str, lines: Iterable[str], out: TextIO, err: TextIO, explain: bool) -> int:
    """`dozor match`: 0 after printing matching ids, 2 when the query is malformed."""
    from bot.matching import QueryError, QueryMatcher

    try:
        matcher = QueryMatcher(query)
    except QueryError as exc:
        print(f"dozor match: {exc}", file=err)
        return 2
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            post_id, text = record["id"], record["text"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
        except (ValueError, KeyError, TypeError) as exc:
            print(f"dozor match: line {number} skipped: {exc}", file=err)
            continue
        spans = matcher.spans(text)
        if spans is None:
            continue
        if explain:
            words = list(dict.fromkeys(text[s.start : s.end] for s in spans))
            print(f"{post_id}\t{', '.join(words)}", file=out)
        else:
            print(post_id, file=out)
    return 0


def _configure_logging(
    level: str, redact: Redactor | None = None, fmt: LogFormat = "plain"
) -> None:
    """Log to stderr at `level`, as plain lines or JSON (LOG_FORMAT), secrets redacted."""
    redact = redact or Redactor()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(fmt, redact))
    logging.basicConfig(level=level, handlers=[handler])
    install_log_redaction(redact)
    # aiogram logs every update at INFO; that is noise for an operator.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


async def _login(settings: Settings) -> int:
    """The only interactive step: `dozor run` never prompts and uses the session written here."""
    from bot.sources.telegram import login

    credentials = settings.telegram_credentials
    if credentials is None:
        raise SettingsError("TG_API_ID and TG_API_HASH must be set to log in (my.telegram.org)")
    settings.tg_session.parent.mkdir(parents=True, exist_ok=True)
    print(await login(*credentials, str(settings.tg_session)))
    return 0


async def _digest_now(settings: Settings, redact: Redactor, chat_id: int | None) -> int:
    """Queue every digest now and send them, or leave the sending to a running service."""
    from bot.app import make_bot
    from bot.delivery.outbox import OutboxWorker
    from bot.delivery.sender import TelegramSender
    from bot.digest import queue_digests
    from bot.storage import DatabaseInUse
    from bot.storage.coordination import LEADER, Coordination, LocalCoordination
    from bot.storage.opening import open_coordination, open_storage

    url = settings.database_value()
    coordination: Coordination = LocalCoordination()
    try:
        # On SQLite the service holds the file; on PostgreSQL its leader holds the role.
        storage = await open_storage(settings.dozor_db, url, exclusive=url is None, redact=redact)
        if url is not None:
            coordination = await open_coordination(url, telegram=False)
            if not await coordination.try_role(LEADER):
                await coordination.close()
                await storage.close()
                raise DatabaseInUse("the leader sends", None)
            storage.claim_as(coordination.worker)
    except DatabaseInUse as exc:
        # The service is running: it owns the outbox. Queue only; it sends within seconds.
        storage = await open_storage(settings.dozor_db, url, redact=redact)
        try:
            now = await storage.write_barrier()
            count = await queue_digests(
                storage, now, settings.digest_time, settings.tz, force=True, chat_id=chat_id
            )
        finally:
            await storage.close()
        who = f" (pid {exc.pid})" if exc.pid else ""
        print(f"queued {count} digest(s); the running service{who} sends them")
        return 0
    bot = make_bot(settings)
    try:
        now = await storage.write_barrier()
        count = await queue_digests(
            storage, now, settings.digest_time, settings.tz, force=True, chat_id=chat_id
        )
        print(f"queued {count} digest(s)")
        worker = OutboxWorker(storage, TelegramSender(bot), settings.tz, asyncio.Event())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DIGEST_DRAIN_LIMIT
        while loop.time() < deadline:
            await worker.send_due()
            if not (await storage.outbox_counts())["pending"]:
                break
            await asyncio.sleep(1.0)
        counts = await storage.outbox_counts()
        print(f"sent; {counts['pending']} message(s) still pending, {counts['failed']} set aside")
        return 0
    finally:
        await bot.session.close()
        await storage.close()
        await coordination.close()


def run_migrate(source: str, target: str, out: TextIO, err: TextIO) -> int:
    """`dozor migrate`: 0 when every table's rows were counted equal on both sides."""
    from pathlib import Path

    from bot.progress import progress_reporter
    from bot.storage.transfer import migrate

    if not source.startswith("sqlite:") or not target.startswith(("postgresql:", "postgres:")):
        print(
            "dozor migrate: use --from sqlite:PATH --to postgresql://USER@HOST/DATABASE",
            file=err,
        )
        return 2
    redact = Redactor([url_password(target)])
    path = Path(source.removeprefix("sqlite:"))
    if not path.is_file():
        print(f"dozor migrate: no SQLite database at {path}", file=err)
        return 2
    try:
        with progress_reporter(out) as progress:
            counts = asyncio.run(migrate(path, target, progress))
    except StorageError as exc:
        print(f"dozor migrate: {redact(str(exc))}", file=err)
        return 2
    except KeyboardInterrupt:
        print("dozor migrate: interrupted; run it again to go on where it stopped", file=err)
        return 130
    for count in counts:
        verdict = "ok" if count.equal else "DIFFERENT"
        print(
            f"{count.table:<14} {count.source:>12,} {count.destination:>12,}  {verdict}", file=out
        )
    if all(count.equal for count in counts):
        print("copied; every table counted equal. Set DATABASE_URL to use it.", file=out)
        return 0
    print("dozor migrate: the counts differ; run it again to go on", file=err)
    return 1


def run_backup(settings: Settings, path: str, force: bool, out: TextIO, err: TextIO) -> int:
    """`dozor backup PATH`: 0 once a checked copy is at PATH; 2 when refused (PATH exists,
    no database, PostgreSQL) or the copy failed its check, nothing written; 1 on an I/O error."""
    from pathlib import Path

    from bot.backup import BackupError, backup, postgres_guidance
    from bot.progress import progress_reporter

    if settings.database_value() is not None:
        print(f"dozor backup: {postgres_guidance('backup', path)}", file=err)
        return 2
    try:
        with progress_reporter(out) as progress:
            copy = backup(settings.dozor_db, Path(path), force=force, progress=progress)
    except BackupError as exc:
        print(f"dozor backup: {exc}", file=err)
        return 2
    except OSError as exc:
        print(f"dozor backup: {exc.strerror or exc} ({exc.filename or path})", file=err)
        return 1
    print(f"backup written: {copy.path} ({_size(copy.size)}, checked: integrity ok)", file=out)
    _print_counts(copy.schema, copy.counts, out)
    return 0


def run_restore(settings: Settings, path: str, out: TextIO, err: TextIO) -> int:
    """`dozor restore PATH`: 0 once the backup is the database (the old one kept beside it);
    2 when refused (a service runs, the backup is damaged or not a Dozor database, PostgreSQL),
    nothing changed; 1 on an I/O error."""
    from pathlib import Path

    from bot.backup import BackupError, latest_migration, postgres_guidance, restore
    from bot.progress import progress_reporter
    from bot.storage.lock import DatabaseInUse

    if settings.database_value() is not None:
        print(f"dozor restore: {postgres_guidance('restore', path)}", file=err)
        return 2
    try:
        with progress_reporter(out) as progress:
            done = restore(Path(path), settings.dozor_db, progress=progress)
    except DatabaseInUse as exc:
        who = f"process {exc.pid}" if exc.pid else "another process"
        print(
            f"dozor restore: {settings.dozor_db} is in use by a running Dozor service ({who}); "
            "stop it, then restore",
            file=err,
        )
        return 2
    except BackupError as exc:
        print(f"dozor restore: {exc}; nothing was changed", file=err)
        return 2
    except OSError as exc:
        print(f"dozor restore: {exc.strerror or exc} ({exc.filename or path})", file=err)
        return 1
    print(f"restored: {done.copy.path} from {path} ({_size(done.copy.size)})", file=out)
    _print_counts(done.copy.schema, done.copy.counts, out)
    if done.kept is not None:
        print(f"the previous database is kept as {done.kept}", file=out)
    else:
        print("there was no database before: nothing was replaced", file=out)
    if done.copy.schema < latest_migration():
        print(
            f"the backup has schema {done.copy.schema}; the service migrates it to "
            f"{latest_migration()} when it starts",
            file=out,
        )
    return 0


def _print_counts(schema: int, counts: dict[str, int], out: TextIO) -> None:
    print(f"  {'schema':<14} {schema:>12}", file=out)
    for table, rows in counts.items():
        print(f"  {table:<14} {rows:>12,}", file=out)


def _size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size:,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size:,} bytes"  # not reached


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "match":  # offline: needs no settings
        if args.file == "-":
            return run_match(args.query, sys.stdin, sys.stdout, sys.stderr, args.explain)
        try:
            with open(args.file, encoding="utf-8", errors="replace") as handle:
                return run_match(args.query, handle, sys.stdout, sys.stderr, args.explain)
        except OSError as exc:
            print(f"dozor match: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return 2
    if args.command == "migrate":  # both databases are named: needs no settings
        _configure_quietly()
        return run_migrate(args.source, args.target, sys.stdout, sys.stderr)
    if args.command == "doctor":  # reports broken settings itself
        from bot.doctor import run_doctor

        _configure_quietly()
        return run_doctor(sys.stdout, as_json=args.json)
    if args.command == "demo":  # offline: needs no settings and no token
        from bot.demo import run_demo

        _configure_quietly()
        return asyncio.run(run_demo())
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"dozor: {exc}", file=sys.stderr)
        return 2
    redact = Redactor(settings.secrets())
    _configure_logging(settings.log_level, redact, settings.log_format)
    try:
        return _run_command(args, settings, redact)
    except (SettingsError, StorageError) as exc:
        _stopped(f"dozor: {redact(str(exc))}", settings.log_format)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `dozor sources list | head`: the reader left, nothing wrong
        sys.stderr.close()
        return 141
    except Exception as exc:
        problem = as_storage_error(settings.dozor_db, exc)
        if problem is None:
            # Through the log, not Python's own traceback printer: the record is redacted.
            logging.getLogger("bot.cli").critical(
                "dozor stopped on an unexpected error", exc_info=exc
            )
            return 1
        _stopped(f"dozor: {redact(str(problem))}", settings.log_format)
        return 2


def _stopped(line: str, fmt: LogFormat) -> None:
    """The one line a command stops with: as it is on stderr, or with LOG_FORMAT=json as a
    CRITICAL record (one JSON line), so a log collector reading the service parses it too."""
    if fmt == "json":
        logging.getLogger("bot.cli").critical(line)
    else:
        print(line, file=sys.stderr)


def _configure_quietly() -> None:
    """Logging at WARNING for the commands that need no settings (`migrate`, `demo`,
    `doctor`): LOG_FORMAT and the secrets to redact from the settings when they can be read,
    else LOG_FORMAT from the environment alone."""
    try:
        settings = load_settings()
    except SettingsError:
        value = os.environ.get("LOG_FORMAT", "").strip().lower()
        _configure_logging("WARNING", fmt="json" if value == "json" else "plain")
        return
    _configure_logging("WARNING", Redactor(settings.secrets()), settings.log_format)


def _run_command(args: argparse.Namespace, settings: Settings, redact: Redactor) -> int:
    """The commands that need settings (all but `match`, `migrate` and `demo`)."""
    if args.command == "login":
        return asyncio.run(_login(settings))
    if args.command == "sources":
        return asyncio.run(run_sources(settings, args, sys.stdout, redact))
    if args.command == "backup":
        return run_backup(settings, args.path, args.force, sys.stdout, sys.stderr)
    if args.command == "restore":
        return run_restore(settings, args.path, sys.stdout, sys.stderr)
    settings.require_token()
    if args.command == "run":
        from bot.app import run_service

        return asyncio.run(run_service(settings, redact))
    return asyncio.run(_digest_now(settings, redact, args.chat))


if __name__ == "__main__":
    sys.exit(main())
