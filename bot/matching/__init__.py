"""Query language, text normalisation and the subscription index that matches posts."""

from bot.matching.index import Hit, QueryIndex, QueryMatcher
from bot.matching.query import Query, QueryError, parse_query

__all__ = ["Hit", "Query", "QueryError", "QueryIndex", "QueryMatcher", "parse_query"]
