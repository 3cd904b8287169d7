"""PostgreSQL: digests (a part of `PostgresStorage`)."""

from __future__ import annotations

from bot.storage.postgres.engine import PostgresBase


class Digests(PostgresBase):
    """(being written)"""
