"""A small file system of a test's own (tmpfs), to fill up or make read-only for real."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "16m") -> Iterator[Path]:
    """Mount a tmpfs of `size` on `folder` for the block; skips the test where mounting is
    not permitted (it needs root), since a full or read-only disk cannot be faked honestly."""
    folder.mkdir(exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"needs permission to mount a small tmpfs: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def make_read_only(folder: Path) -> None:
    """Remount a tmpfs from `tmpfs()` read-only."""
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


@contextlib.contextmanager
def unwritable_folder(folder: Path) -> Iterator[Path]:
    """A folder `make_unwritable` can make read-only: a tmpfs as root (root may write
    whatever the modes say), a plain folder otherwise; its modes are given back after."""
    if os.geteuid() != 0:
        folder.mkdir()
        try:
            yield folder
        finally:
            for path in [folder, *folder.iterdir()]:
                path.chmod(0o755)
        return
    with tmpfs(folder, "8m"):
        yield folder


def make_unwritable(folder: Path) -> None:
    """Make a folder from `unwritable_folder` and its files read-only."""
    if os.geteuid() == 0:
        make_read_only(folder)
        return
    for path in folder.iterdir():
        path.chmod(0o444)
    folder.chmod(0o555)
