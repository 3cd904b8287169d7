"""One service per SQLite file: an advisory lock held for the life of the process.

Two `dozor run` on one database would both drain the outbox and send alerts twice. The lock
is `flock()` on a file beside the database (`dozor.sqlite3.lock`), never on the database itself,
so SQLite's own POSIX locks are untouched; the kernel releases it when the process dies, even
by `kill -9`, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from pathlib import Path


class StorageError(Exception):
    """The database cannot be used; the message says what is wrong, with which file, and what
    to do about it (one line, for the operator)."""


class DatabaseInUse(StorageError):
    """Another process (a running service) holds the database's lock."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


def lock_path(database: Path | str) -> Path:
    """The lock file of a database (its real path: a symlink names the same database)."""
    return Path(f"{Path(database).resolve()}.lock")


class ProcessLock:
    """An exclusive, non-blocking lock on `<database>.lock`, holding the owner's pid."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, database: Path | str) -> ProcessLock:
        """Take the lock or raise DatabaseInUse naming the process that holds it."""
        path = lock_path(database)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            who = f"process {pid}" if pid else "another process"
            raise DatabaseInUse(
                f"{database} is already used by a running Dozor service ({who}); stop it "
                "first — two services on one database would send every alert twice",
                pid,
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def holder(database: Path | str) -> int | None:
    """The pid of the process holding the database's lock, or None when nobody does."""
    path = lock_path(database)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_only(target: Path) -> bool:
    """Whether the file (or the folder it would be created in) cannot be written."""
    existing = target if target.exists() else target.parent
    try:
        if os.statvfs(existing).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        return False
    folder = existing if existing.is_dir() else existing.parent
    # SQLite writes beside the file too (the -wal and -shm files), so the folder counts.
    return not os.access(folder, os.W_OK) or (
        existing.is_file() and not os.access(existing, os.W_OK)
    )


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip() or "0") or None
    return None


def unusable_database(path: Path | str, exc: BaseException) -> str:
    """One line for the operator: what is wrong with the database file and what to do."""
    if isinstance(exc, DatabaseInUse):
        return str(exc)
    reason = str(exc).lower()
    target = Path(path)
    if _read_only(target):
        return (
            f"the database {target} is read-only ({exc}); make the file, its folder and "
            "their file system writable by the user running Dozor"
        )
    if isinstance(exc, OSError) and not str(exc).startswith("database"):
        detail = exc.strerror or str(exc)
        return (
            f"cannot use the database {target}: {detail} ({exc.filename or target}); "
            "check that DOZOR_DB names a file in a folder the service may write"
        )
    if "not a database" in reason or "malformed" in reason or "corrupt" in reason:
        return (
            f"the database {target} is corrupt or not a Dozor database ({exc}); restore it "
            "from a backup, or move it away to start with an empty one"
        )
    if "readonly" in reason or "read-only" in reason:
        return (
            f"the database {target} is read-only ({exc}); make the file and its folder "
            "writable by the user running Dozor"
        )
    if "disk is full" in reason or "disk i/o" in reason:
        return f"cannot write the database {target} ({exc}); free space on its disk"
    if "locked" in reason or "busy" in reason:
        return (
            f"the database {target} is locked by another program ({exc}); close it and try again"
        )
    if target.is_dir():
        return (
            f"DOZOR_DB {target} is a folder; set it to a file path such as {target}/dozor.sqlite3"
        )
    return (
        f"cannot open the database {target} ({exc}); check that DOZOR_DB names a file in a "
        "folder the service may write"
    )


def as_storage_error(path: Path | str, exc: BaseException) -> StorageError | None:
    """A database error met after opening (a corrupt page, a full disk) as a StorageError
    with its one-line explanation; None for anything else."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, sqlite3.DatabaseError):
        return StorageError(unusable_database(path, exc))
    return None
