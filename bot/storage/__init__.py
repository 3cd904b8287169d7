"""Persistence: the only package that knows SQL."""

from bot.storage.lock import DatabaseInUse, StorageError, as_storage_error
from bot.storage.protocol import Storage
from bot.storage.records import (
    MEDIA_CHART,
    PendingMessage,
    QueuedDigest,
    SaveResult,
    TooManySubscriptions,
    ZoneShift,
)
from bot.storage.sqlite import SqliteStorage

__all__ = [
    "MEDIA_CHART",
    "DatabaseInUse",
    "PendingMessage",
    "QueuedDigest",
    "SaveResult",
    "SqliteStorage",
    "Storage",
    "StorageError",
    "TooManySubscriptions",
    "ZoneShift",
    "as_storage_error",
]
