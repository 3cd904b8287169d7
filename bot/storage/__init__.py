"""Persistence: the only package that knows SQL."""

from bot.storage.sqlite import PendingMessage, SaveResult, Storage

__all__ = ["PendingMessage", "SaveResult", "Storage"]
