"""Sources of posts: one module per kind, each the only importer of its client library."""

from bot.sources.base import Feed, Source
from bot.sources.registry import build_source

__all__ = ["Feed", "Source", "build_source"]
