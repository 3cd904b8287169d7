"""Persistence: the only package that knows SQL."""

from bot.storage.lock import DatabaseInUse, StorageError, as_storage_error
from bot.storage.sqlite import (
    MEDIA_CHART,
    PendingMessage,
    QueuedDigest,
    SaveResult,
    Storage,
    TooManySubscriptions,
    ZoneShift,
)

__all__ = [
    "MEDIA_CHART",
    "DatabaseInUse",
    "PendingMessage",
    "QueuedDigest",
    "SaveResult",
    "Storage",
    "StorageError",
    "TooManySubscriptions",
    "ZoneShift",
    "as_storage_error",
]
