"""Persistence: the only package that knows SQL."""

from bot.storage.lock import DatabaseInUse, StorageError, as_storage_error
from bot.storage.sqlite import PendingMessage, SaveResult, Storage, TooManySubscriptions

__all__ = [
    "DatabaseInUse",
    "PendingMessage",
    "SaveResult",
    "Storage",
    "StorageError",
    "TooManySubscriptions",
    "as_storage_error",
]
