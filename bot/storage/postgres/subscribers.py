"""PostgreSQL: subscribers (a part of `PostgresStorage`)."""

from __future__ import annotations

from bot.storage.postgres.engine import PostgresBase


class Subscribers(PostgresBase):
    """(being written)"""
