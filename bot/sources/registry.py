"""Builds a Source from its spec; the one place that knows every source kind."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.domain import SourceSpec
from bot.sources.base import Source
from bot.sources.jsonl import JsonlSource
from bot.sources.rss import RssSource
from bot.sources.telegram import TelegramGateway, TelegramSource, normalise_username
from bot.sources.tgweb import TgWebSource
from bot.sources.x import XApi, XOptions, XSource

log = logging.getLogger(__name__)

KINDS = ("jsonl", "telegram", "tgweb", "x", "rss")


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """What sources need from the settings (and the one Telegram client, when configured)."""

    tgweb_base: str = "https://t.me"
    tgweb_interval: float = 300.0
    telegram: Callable[[], Awaitable[TelegramGateway]] | None = None
    telegram_catch_up: float = 120.0
    x_api: XApi | None = None  # one per service: one token, one rate-limit budget
    x_interval: float = 300.0
    x_options: XOptions = field(default_factory=XOptions)
    rss_interval: float = 600.0


def build_source(spec: SourceSpec, options: SourceOptions | None = None) -> Source:
    """A source for the spec, or ValueError saying why it cannot be watched."""
    options = options or SourceOptions()
    if spec.kind == "jsonl":
        return JsonlSource(spec.target)
    if spec.kind == "telegram":
        if options.telegram is None:
            log.warning(
                "%s: TG_API_ID/TG_API_HASH are not set; reading the public web preview instead",
                spec.text,
            )
            return TgWebSource(
                normalise_username(spec.target),
                base_url=options.tgweb_base,
                interval=options.tgweb_interval,
            )
        return TelegramSource(
            spec.target, options.telegram, catch_up_interval=options.telegram_catch_up
        )
    if spec.kind == "tgweb":
        return TgWebSource(
            spec.target, base_url=options.tgweb_base, interval=options.tgweb_interval
        )
    if spec.kind == "x":
        if options.x_api is None:
            raise ValueError(f"{spec.text}: X_BEARER_TOKEN is not set, so X accounts are not read")
        return XSource(
            spec.target, options.x_api, interval=options.x_interval, options=options.x_options
        )
    if spec.kind == "rss":
        return RssSource(spec.target, interval=options.rss_interval)
    raise ValueError(
        f"unknown source kind {spec.kind!r} in {spec.text!r}; known: {', '.join(KINDS)}"
    )
