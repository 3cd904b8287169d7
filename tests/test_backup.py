"""`dozor backup` while the service writes, and `dozor restore` while it does not.

Nothing waits a fixed time: the backup is made to pause after its first step until the
writer has committed a post, so writes fall inside the backup on any machine."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.backup import COPYING, BackupError, backup, restore
from bot.domain import Post
from bot.storage import DatabaseInUse, SqliteStorage
from bot.storage.lock import ProcessLock
from tests.test_process import BOUND, PROJECT_ROOT, _env, _run_cli, _until

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
WRITTEN_DURING_BACKUP = 20  # posts the writer saves once the backup has begun (< its steps)


def _post(number: int) -> Post:
    return Post("jsonl", "ch", str(number), NOW, f"post {number}", f"https://t.me/ch/{number}")


def _post_ids(path: Path) -> list[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT post_id FROM posts").fetchall()
    return sorted((str(row[0]) for row in rows), key=int)


def _integrity(path: Path) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


async def _count_posts(path: Path) -> int:
    """The posts of a database opened as the service opens it (migrated, locked)."""
    storage = await SqliteStorage.open(path, exclusive=True)
    try:
        return await storage.count_posts()
    finally:
        await storage.close()


def _names(folder: Path) -> list[str]:
    """The files in `folder`, without the shared-memory and WAL files of read-only readers."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(("-shm", "-wal")))


async def _database_with_posts(path: Path, count: int) -> None:
    storage = await SqliteStorage.open(path)
    try:
        for number in range(1, count + 1):
            await storage.save_post(_post(number), [])
    finally:
        await storage.close()


async def test_a_backup_while_posts_are_saved_holds_every_post_committed_before_it(
    tmp_path: Path,
) -> None:
    """Each step of the backup waits for the writer to commit another post, so the writes
    interleave with the copy on any machine; the copy is the database of one moment."""
    database, target = tmp_path / "dozor.sqlite3", tmp_path / "backup.sqlite3"
    # The service's own way of opening: it holds the process lock all along.
    storage = await SqliteStorage.open(database, exclusive=True)
    committed: list[str] = []
    written = threading.Condition()  # notified at each commit and when the writer ends
    copying = threading.Event()  # the backup has begun (its first step is copied)
    writer_done = threading.Event()
    stop = asyncio.Event()

    async def ingest() -> None:
        number = meanwhile = 0
        try:
            # Bounded: a backup that restarted at every write would end (and fail), not hang.
            while not stop.is_set() and meanwhile < WRITTEN_DURING_BACKUP:
                number += 1
                after_start = copying.is_set()
                await storage.save_post(_post(number), [])
                with written:
                    committed.append(str(number))
                    meanwhile += after_start
                    written.notify_all()
        finally:
            with written:
                writer_done.set()
                written.notify_all()

    steps: list[tuple[int, int]] = []

    def report(what: str, done: int, total: int) -> None:
        assert what == COPYING
        steps.append((done, total))
        copying.set()
        with written:
            seen = len(committed)
            assert written.wait_for(lambda: len(committed) > seen or writer_done.is_set(), BOUND)

    writer = asyncio.create_task(ingest())
    try:
        await _until(lambda: len(committed) >= 100, "100 posts saved")
        before = list(committed)
        copy = await asyncio.to_thread(backup, database, target, progress=report, pages=1)
    finally:
        stop.set()
        await writer
        await storage.close()

    assert len(steps) > WRITTEN_DURING_BACKUP  # a step at a time, writes between them
    assert steps[-1][0] == steps[-1][1]
    assert _integrity(target) == "ok"
    in_copy = _post_ids(target)
    # One moment's database: the first posts committed, in order, none missing...
    assert in_copy == committed[: len(in_copy)]
    assert set(before) <= set(in_copy)
    # ...and none of those written during the copy (one snapshot, never restarted).
    assert len(committed) - len(in_copy) >= WRITTEN_DURING_BACKUP
    assert copy.counts["posts"] == len(in_copy)
    assert copy.path == target
    assert await _count_posts(target) == len(in_copy)
    assert ".partial" not in "".join(_names(tmp_path))  # no temporary file left


def test_dozor_backup_beside_a_running_service_and_never_over_a_file(tmp_path: Path) -> None:
    env = _env(tmp_path, "http://127.0.0.1:9")
    database = Path(env["DOZOR_DB"])
    asyncio.run(_database_with_posts(database, 3))
    target = tmp_path / "backups" / "dozor-1.sqlite3"
    target.parent.mkdir()
    held = ProcessLock.acquire(database)  # as `dozor run` holds it
    try:
        done = _run_cli(env, tmp_path, "backup", str(target))
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert "copying pages: " in lines[0]  # not a terminal: plain progress lines
        assert f"backup written: {target} (" in done.stdout
        assert "checked: integrity ok" in done.stdout
        assert any(line.split() == ["posts", "3"] for line in lines)
        assert any(line.split() == ["subscriptions", "0"] for line in lines)
        assert any(line.split() == ["outbox", "0"] for line in lines)
        assert _post_ids(target) == ["1", "2", "3"]

        before = target.read_bytes()
        again = _run_cli(env, tmp_path, "backup", str(target))
        assert again.returncode == 2
        assert again.stderr.strip() == (
            f"dozor backup: {target} already exists; pass --force to replace it"
        )
        assert target.read_bytes() == before

        asyncio.run(_database_with_posts(database, 5))
        forced = _run_cli(env, tmp_path, "backup", str(target), "--force")
        assert forced.returncode == 0, forced.stderr
        assert _post_ids(target) == ["1", "2", "3", "4", "5"]
    finally:
        held.release()
    assert sorted(p.name for p in target.parent.iterdir()) == ["dozor-1.sqlite3"]


def test_backup_refusals_leave_nothing_behind(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite3"
    with pytest.raises(BackupError, match="there is no database at"):
        backup(database, tmp_path / "b.sqlite3")
    asyncio.run(_database_with_posts(database, 1))
    with pytest.raises(BackupError, match="is a folder"):
        backup(database, tmp_path)
    with pytest.raises(BackupError, match="is the database itself"):
        backup(database, database, force=True)
    with pytest.raises(BackupError, match="there is no folder"):
        backup(database, tmp_path / "nowhere" / "b.sqlite3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db.sqlite3"]


def test_postgresql_gets_pg_dump_guidance_and_exit_2(tmp_path: Path) -> None:
    env = {
        **_env(tmp_path, "http://127.0.0.1:9"),
        "DATABASE_URL": "postgresql://dozor:pg-secret-password@127.0.0.1:9/dozor",
    }
    done = _run_cli(env, tmp_path, "backup", "dozor.dump")
    assert done.returncode == 2
    assert 'pg_dump --format=custom --file=dozor.dump "$DATABASE_URL"' in done.stderr
    assert "pg_restore" in done.stderr
    assert "pg-secret-password" not in done.stderr + done.stdout
    assert not (tmp_path / "dozor.dump").exists()
    done = _run_cli(env, tmp_path, "restore", "dozor.dump")
    assert done.returncode == 2
    assert 'pg_restore --clean --if-exists --no-owner --dbname="$DATABASE_URL" dozor.dump' in (
        done.stderr
    )
    assert not Path(env["DOZOR_DB"]).exists()


def test_restore_is_refused_while_a_service_holds_the_database(tmp_path: Path) -> None:
    env = _env(tmp_path, "http://127.0.0.1:9")
    database = Path(env["DOZOR_DB"])
    asyncio.run(_database_with_posts(database, 2))
    copy = tmp_path / "backup.sqlite3"
    backup(database, copy)
    asyncio.run(_database_with_posts(database, 4))
    held = ProcessLock.acquire(database)
    try:
        done = _run_cli(env, tmp_path, "restore", str(copy))
        with pytest.raises(DatabaseInUse):
            restore(copy, database)
    finally:
        held.release()
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("dozor restore: ")
    assert f"in use by a running Dozor service (process {os.getpid()})" in line
    assert _post_ids(database) == ["1", "2", "3", "4"]  # untouched
    assert not list(tmp_path.glob("*before-restore*"))
    assert not list(tmp_path.glob("*.partial"))


def _crash_after_saving(database: Path, count: int) -> None:
    """A service killed without closing: its last posts are in the -wal file only."""
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from datetime import UTC, datetime
        from bot.domain import Post
        from bot.storage import SqliteStorage

        async def main():
            storage = await SqliteStorage.open({str(database)!r}, exclusive=True)
            for n in range(1, {count} + 1):
                when = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
                await storage.save_post(Post("jsonl", "ch", str(n), when, f"post {{n}}"), [])
            os._exit(0)

        asyncio.run(main())
        """
    )
    subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": ""},
        timeout=BOUND,
        check=True,
    )


def test_restore_puts_the_backup_in_place_and_keeps_the_database_it_replaces(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path, "http://127.0.0.1:9")
    database = Path(env["DOZOR_DB"])
    asyncio.run(_database_with_posts(database, 2))
    copy = tmp_path / "backup.sqlite3"
    backup(database, copy)
    _crash_after_saving(database, 5)
    wal = Path(f"{database}-wal")
    assert wal.stat().st_size > 0  # committed posts not yet in the main file

    done = _run_cli(env, tmp_path, "restore", str(copy))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"restored: {database} from {copy} (" in done.stdout
    assert any(line.split() == ["posts", "2"] for line in lines)
    (kept,) = tmp_path.glob("dozor.sqlite3.before-restore-*[0-9]Z")
    assert f"the previous database is kept as {kept}" in lines
    # The restored database is the backup's, with no WAL of the old one replayed into it.
    assert not wal.exists()
    assert _integrity(database) == "ok"
    assert asyncio.run(_count_posts(database)) == 2  # opened as the service opens it
    # The old database, with its WAL beside it under the matching name: nothing lost.
    assert Path(f"{kept}-wal").exists()
    assert _post_ids(kept) == ["1", "2", "3", "4", "5"]
    assert not list(tmp_path.glob("*.partial"))


def test_restore_refuses_a_damaged_or_foreign_file_and_changes_nothing(
    tmp_path: Path,
) -> None:
    database = tmp_path / "dozor.sqlite3"
    asyncio.run(_database_with_posts(database, 1))
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database at all\n" * 500)
    foreign = tmp_path / "foreign.sqlite3"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    db.close()
    with pytest.raises(BackupError, match="is not a usable SQLite database"):
        restore(garbage, database)
    with pytest.raises(BackupError, match=r"is not a Dozor database \(it has no matches, outbox"):
        restore(foreign, database)
    with pytest.raises(BackupError, match="there is no backup at"):
        restore(tmp_path / "missing.sqlite3", database)
    env = {**_env(tmp_path, "http://127.0.0.1:9"), "DOZOR_DB": str(database)}
    done = _run_cli(env, tmp_path, "restore", str(foreign))
    assert done.returncode == 2
    assert done.stderr.strip().endswith("; nothing was changed")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dozor.sqlite3",
        "dozor.sqlite3.lock",
        "foreign.sqlite3",
        "garbage.sqlite3",
    ]
    assert _post_ids(database) == ["1"]


def test_restore_without_a_database_creates_it(tmp_path: Path) -> None:
    source = tmp_path / "source.sqlite3"
    asyncio.run(_database_with_posts(source, 3))
    copy = tmp_path / "copy.sqlite3"
    backup(source, copy)
    database = tmp_path / "new" / "dozor.sqlite3"
    done = restore(copy, database)
    assert done.kept is None
    assert done.copy.counts["posts"] == 3
    assert _post_ids(database) == ["1", "2", "3"]
