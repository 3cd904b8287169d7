"""`dozor backup` and `dozor restore`: a consistent copy of the SQLite database while the
service runs, and putting such a copy back while it does not.

Both copy through SQLite's online backup API into a temporary file beside the destination,
check the copy (`PRAGMA integrity_check`, the tables of a Dozor database) and only then rename
it into place, so a destination is never left half-written.

The backup reads the live database through a read-only connection and takes no process lock:
it runs beside the service. A Dozor database is in WAL mode, where a reader never blocks a
writer: the copy holds one read snapshot for its whole run, so it is the database as it was at
one moment (every post committed before the backup started, none half-saved) and SQLite never
has to restart it because the service wrote meanwhile. It copies a step of pages at a time to
report progress. (A database in rollback-journal mode is copied a step at a time too, each step
a short read lock; SQLite restarts the copy if another connection writes between steps.)

The restore takes the service's process lock (refusing while a service runs), keeps the current
database as `<db>.before-restore-<UTC time>` — with its `-wal` and `-shm` files under the
matching names, since the WAL can hold committed data not yet in the main file — and renames the
checked copy into place.

PostgreSQL is copied with its own tools (`pg_dump`, `pg_restore`): see `postgres_guidance`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sqlite3
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from bot.storage.lock import ProcessLock, unusable_database
from bot.storage.records import migration_scripts

Report = Callable[[str, int, int], None]  # bot.progress.Report: what, done, in all

PAGES_PER_STEP = 1024  # 4 MiB of 4 KiB pages between progress reports
COUNTED_TABLES = ("sources", "subscribers", "subscriptions", "posts", "outbox")
DOZOR_TABLES = frozenset(
    {"schema_migrations", "sources", "posts", "subscribers", "subscriptions", "matches", "outbox"}
)
_SIDE_FILES = ("-journal", "-wal", "-shm")  # what SQLite keeps beside a database file
COPYING = "copying pages"


class BackupError(Exception):
    """The backup or restore cannot be done; one line for the operator saying why and what
    to do."""


@dataclass(frozen=True)
class Copy:
    """A checked copy of a Dozor database."""

    path: Path
    size: int  # bytes
    schema: int  # the latest migration applied to it
    counts: dict[str, int]  # rows of the main tables


@dataclass(frozen=True)
class Restored:
    copy: Copy  # the database as restored
    kept: Path | None  # where the database it replaced was kept (None: there was none)


def backup(
    database: Path,
    target: Path,
    *,
    force: bool = False,
    progress: Report | None = None,
    pages: int = PAGES_PER_STEP,
) -> Copy:
    """Copy the SQLite `database` (live or not) to `target`, checked; `force` replaces an
    existing `target`. Raises BackupError (refused, or the copy failed its check)."""
    database, target = Path(database).absolute(), Path(target).absolute()
    if not database.is_file():
        raise BackupError(f"there is no database at {database} (DOZOR_DB)")
    if target.is_dir():
        raise BackupError(
            f"{target} is a folder; name the backup file, e.g. {target}/dozor.sqlite3"
        )
    if target.exists() and _same_file(database, target):
        raise BackupError(f"{target} is the database itself; name another file")
    if target.exists() and not force:
        raise BackupError(f"{target} already exists; pass --force to replace it")
    if not target.parent.is_dir():
        raise BackupError(f"there is no folder {target.parent}; create it first")
    temporary = _temporary_beside(target)
    try:
        _copy_file(database, temporary, progress, pages, stored=False)
        copy = check(temporary, name=f"the copy of {database}")
        _sync(temporary)
        _put_in_place(temporary, target, replace_existing=force)
    except BaseException:
        _remove(temporary)
        raise
    return replace(copy, path=target)


def restore(
    backup_file: Path,
    database: Path,
    *,
    progress: Report | None = None,
    pages: int = PAGES_PER_STEP,
    now: datetime | None = None,
) -> Restored:
    """Replace the SQLite `database` with the checked contents of `backup_file`, keeping the
    current one beside it. Raises DatabaseInUse while a service runs on the database, and
    BackupError when the backup is missing, damaged or not a Dozor database."""
    backup_file = Path(backup_file).absolute()
    database = Path(database).absolute()
    if database.is_symlink():  # replace the file the service really opens
        database = database.resolve()
    if not backup_file.is_file():
        raise BackupError(f"there is no backup at {backup_file}")
    if database.exists() and _same_file(database, backup_file):
        raise BackupError(f"{backup_file} is the database itself; name a backup file")
    lock = ProcessLock.acquire(database)  # DatabaseInUse while the service runs
    try:
        temporary = _temporary_beside(database)
        try:
            _copy_file(backup_file, temporary, progress, pages, stored=True)
            copy = check(temporary, name=str(backup_file))
            known = latest_migration()
            if copy.schema > known:
                raise BackupError(
                    f"{backup_file} was made by a newer Dozor (schema {copy.schema}; this one "
                    f"knows up to {known}); upgrade Dozor first"
                )
            _keep_owner_and_mode(database, temporary)
            _sync(temporary)
            kept = _move_aside(database, now or datetime.now(UTC))
            os.replace(temporary, database)
            _sync_folder(database.parent)
        except BaseException:
            _remove(temporary)
            raise
    finally:
        lock.release()
    return Restored(replace(copy, path=database), kept)


def check(path: Path, *, name: str | None = None) -> Copy:
    """Check a database file: intact, a Dozor database; its size, schema and row counts.
    `name`: what to call it in the BackupError (default: its path)."""
    name = name or str(path)
    try:
        with contextlib.closing(_open_read_only(path, stored=True)) as db:
            problems = [str(row[0]) for row in db.execute("PRAGMA integrity_check(5)")]
            if problems != ["ok"]:
                raise BackupError(
                    f"{name} failed its integrity check: {'; '.join(problems)[:300]}"
                )
            tables = {
                str(row[0])
                for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            missing = sorted(DOZOR_TABLES - tables)
            if missing:
                raise BackupError(
                    f"{name} is not a Dozor database (it has no {', '.join(missing)} table)"
                )
            row = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
            schema = int(row[0]) if row is not None and row[0] is not None else 0
            counts = {
                table: int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
                for table in COUNTED_TABLES
            }
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{name} is not a usable SQLite database ({exc})") from exc
    return Copy(path, path.stat().st_size, schema, counts)


def latest_migration() -> int:
    """The newest schema version this Dozor knows (its last migration script)."""
    return max((version for version, _ in migration_scripts("bot.storage")), default=0)


def postgres_guidance(command: str, path: str) -> str:
    """What to do instead of `dozor backup`/`restore` on PostgreSQL (DATABASE_URL set)."""
    file = shlex.quote(path)
    if command == "backup":
        return (
            "DATABASE_URL is set: the data is in PostgreSQL, which dozor backup does not copy.\n"
            "Take the backup with PostgreSQL's own tool (consistent while Dozor runs):\n"
            f'  pg_dump --format=custom --file={file} "$DATABASE_URL"\n'
            "Restore it with every Dozor worker stopped:\n"
            f'  pg_restore --clean --if-exists --no-owner --dbname="$DATABASE_URL" {file}'
        )
    return (
        "DATABASE_URL is set: the data is in PostgreSQL, which dozor restore does not write.\n"
        "Stop every Dozor worker, then restore a pg_dump --format=custom backup with:\n"
        f'  pg_restore --clean --if-exists --no-owner --dbname="$DATABASE_URL" {file}\n'
        "and start the workers again (migrations run at start)."
    )


def _open_read_only(path: Path, *, stored: bool = False) -> sqlite3.Connection:
    """A read-only connection. `stored`: a file nobody writes (a backup, our own copy), so
    in a read-only folder, where SQLite cannot make the shared-memory file a WAL-mode reader
    needs, it is read as immutable (when it has no WAL file beside it to miss)."""
    uri = f"file:{quote(str(path))}?mode=ro"
    connection = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
    try:
        connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        connection.close()
        if not stored or Path(f"{path}-wal").exists():
            raise
        connection = sqlite3.connect(
            f"{uri}&immutable=1", uri=True, isolation_level=None, timeout=30.0
        )
    return connection


def _copy_file(
    source: Path, target: Path, progress: Report | None, pages: int, *, stored: bool
) -> None:
    """`_copy` from the file `source` (`stored`: see `_open_read_only`)."""
    try:
        with contextlib.closing(_open_read_only(source, stored=stored)) as connection:
            _copy(connection, target, progress, pages)
    except sqlite3.DatabaseError as exc:
        if stored:
            raise BackupError(f"{source} is not a usable SQLite database ({exc})") from exc
        raise BackupError(unusable_database(source, exc)) from exc


def _copy(source: sqlite3.Connection, target: Path, progress: Report | None, pages: int) -> None:
    """Copy `source` into the (empty) file `target` as one snapshot, a step at a time."""
    mode = source.execute("PRAGMA journal_mode").fetchone()
    snapshot = mode is not None and str(mode[0]).lower() == "wal"
    if snapshot:
        # One read transaction for the whole copy: every step reads the same snapshot, and
        # writes by the service (to the WAL, never blocked by a reader) do not restart it.
        source.execute("BEGIN")
        source.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()

    def step(_status: int, remaining: int, total: int) -> None:
        if progress is not None:
            progress(COPYING, total - remaining, total)

    try:
        with contextlib.closing(sqlite3.connect(target, isolation_level=None)) as copy:
            source.backup(copy, pages=max(1, pages), progress=step)
            # A file of its own: no -wal beside it to lose when it is moved or copied.
            copy.execute("PRAGMA journal_mode = DELETE")
    finally:
        if snapshot:
            with contextlib.suppress(sqlite3.Error):
                source.execute("COMMIT")


def _temporary_beside(path: Path) -> Path:
    """A new empty file in `path`'s folder (same file system: a rename puts it in place),
    readable by its owner only, as the data it will hold."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    return Path(name)


def _put_in_place(temporary: Path, target: Path, *, replace_existing: bool) -> None:
    if replace_existing:
        os.replace(temporary, target)
    else:
        try:
            os.link(temporary, target)  # fails if `target` appeared meanwhile
        except FileExistsError:
            raise BackupError(f"{target} already exists; pass --force to replace it") from None
        except OSError:  # a file system without hard links
            if target.exists():
                raise BackupError(f"{target} already exists; pass --force to replace it") from None
            os.replace(temporary, target)
        else:
            os.unlink(temporary)
    _sync_folder(target.parent)


def _move_aside(database: Path, now: datetime) -> Path | None:
    """Rename the database and its side files to `<db>.before-restore-<time>` (None when
    there is no database). The side files go first: a WAL left under the database's name
    would be replayed into the restored file."""
    if not any(Path(f"{database}{suffix}").exists() for suffix in ("", *_SIDE_FILES)):
        return None
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    kept = database.with_name(f"{database.name}.before-restore-{stamp}")
    number = 1
    while any(Path(f"{kept}{suffix}").exists() for suffix in ("", *_SIDE_FILES)):
        number += 1
        kept = database.with_name(f"{database.name}.before-restore-{stamp}-{number}")
    for suffix in (*_SIDE_FILES, ""):
        with contextlib.suppress(FileNotFoundError):
            os.rename(f"{database}{suffix}", f"{kept}{suffix}")
    _sync_folder(database.parent)
    return kept


def _keep_owner_and_mode(database: Path, copy: Path) -> None:
    """The restored file gets the permissions (and, as root, the owner) of the one it
    replaces, so the service's user can still write it."""
    try:
        info = database.stat()
    except FileNotFoundError:
        return
    with contextlib.suppress(OSError):
        os.chmod(copy, stat.S_IMODE(info.st_mode))
        if os.geteuid() == 0:
            os.chown(copy, info.st_uid, info.st_gid)


def _same_file(first: Path, second: Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def _sync(path: Path) -> None:
    """Flush the file to disk before it is renamed into place."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(temporary: Path) -> None:
    for suffix in ("", *_SIDE_FILES):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{temporary}{suffix}")
