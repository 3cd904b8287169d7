"""`Storage` on PostgreSQL (psycopg 3): for deployments that outgrow one process."""

from bot.storage.postgres.digests import Digests
from bot.storage.postgres.engine import PostgresBase
from bot.storage.postgres.outbox import Outbox
from bot.storage.postgres.search import CandidateSearch
from bot.storage.postgres.sources import SourcesAndPosts
from bot.storage.postgres.subscribers import Subscribers
from bot.storage.protocol import Storage


class PostgresStorage(
    SourcesAndPosts, CandidateSearch, Subscribers, Outbox, Digests, PostgresBase
):
    """Everything Dozor keeps, in a PostgreSQL database several workers may share."""


__all__ = ["PostgresStorage"]


def _conforms(storage: PostgresStorage) -> Storage:
    return storage  # mypy checks here that the engine implements the whole protocol
