"""Builds a Source from its spec; the one place that knows every source kind."""

from __future__ import annotations

from bot.domain import SourceSpec
from bot.sources.base import Source
from bot.sources.jsonl import JsonlSource

KINDS = ("jsonl",)


def build_source(spec: SourceSpec) -> Source:
    """A source for the spec, or ValueError naming the kinds Dozor knows."""
    if spec.kind == "jsonl":
        return JsonlSource(spec.target)
    raise ValueError(
        f"unknown source kind {spec.kind!r} in {spec.text!r}; known: {', '.join(KINDS)}"
    )
