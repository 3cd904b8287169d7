"""Turning what people type or paste into source specs.

`/addsource https://t.me/militaryrussiaru/36594`, `@milinfolive`, `tgweb:milinfolive` and
`x.com/SokovNikolai` all name a source; `dozor sources import` finds every channel and account
an article links to.
"""

from __future__ import annotations

import re

from bot.domain import SourceSpec

KNOWN_KINDS = ("telegram", "tgweb", "x", "rss", "jsonl")

_TG_NAME = r"[A-Za-z][A-Za-z0-9_]{3,31}"
# A public channel's username; every Telegram source checks names against this one pattern.
TELEGRAM_USERNAME = re.compile(_TG_NAME)
_X_NAME = r"[A-Za-z0-9_]{1,15}"
# t.me paths that are not channels: invites, private-channel links, service pages.
_TG_RESERVED = {
    "joinchat",
    "c",
    "s",
    "share",
    "addstickers",
    "addemoji",
    "proxy",
    "socks",
    "iv",
    "login",
    "setlanguage",
    "addtheme",
    "contact",
    "boost",
    "bg",
    "m",
}
_X_RESERVED = {
    "i",
    "home",
    "intent",
    "share",
    "search",
    "hashtag",
    "explore",
    "settings",
    "messages",
    "notifications",
    "login",
    "signup",
    "tos",
    "privacy",
    "compose",
}

_TG_LINK = re.compile(
    rf"(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me|telegram\.dog)/(?:s/)?(?P<name>{_TG_NAME})"
    r"(?![A-Za-z0-9_])",
    re.IGNORECASE,
)
_TG_PATH_PREFIX = re.compile(
    r"(?:t\.me|telegram\.me|telegram\.dog)/(?P<first>[A-Za-z0-9_+]+)", re.IGNORECASE
)
_X_LINK = re.compile(
    rf"(?:https?://)?(?:www\.|mobile\.)?(?:x|twitter)\.com/(?P<name>{_X_NAME})"
    r"(?![A-Za-z0-9_])",
    re.IGNORECASE,
)


def _telegram(name: str) -> SourceSpec:
    # Telegram usernames are case-insensitive; one spelling keeps a channel from being added twice.
    return SourceSpec("telegram", "@" + name.lower())


def find_sources(text: str) -> list[SourceSpec]:
    """Every Telegram channel and X account an article links to, once each, in order."""
    found: dict[str, SourceSpec] = {}
    for match in _TG_LINK.finditer(text):
        name = match.group("name")
        prefix = _TG_PATH_PREFIX.search(match.group())
        if name.lower() in _TG_RESERVED or (prefix and prefix.group("first").lower() == "c"):
            continue
        spec = _telegram(name)
        found.setdefault(spec.text.lower(), spec)
    for match in _X_LINK.finditer(text):
        name = match.group("name")
        if name.lower() in _X_RESERVED:
            continue
        spec = SourceSpec("x", "@" + name)
        found.setdefault(spec.text.lower(), spec)
    return list(found.values())


class SourceError(ValueError):
    """A source that cannot be watched as written; `key` and `details` name the problem for
    the catalogues (`source-error-<key>`), `str()` is the English sentence (CLI, logs)."""

    def __init__(self, message: str, *, key: str, **details: str) -> None:
        super().__init__(message)
        self.key = key
        self.details = details


def parse_source(text: str) -> SourceSpec:
    """A spec from a spec, a link or an @name; SourceError says what would have been accepted."""
    text = text.strip()
    if not text:
        raise SourceError(
            "give a source, e.g. @militaryrussiaru or https://t.me/militaryrussiaru", key="empty"
        )
    kind, sep, target = text.partition(":")
    if sep and kind.lower() in KNOWN_KINDS and not target.startswith("//"):
        try:
            spec = SourceSpec.parse(text)
        except ValueError as exc:
            raise SourceError(str(exc), key="kind-target", spec=text[:60]) from None
        return _checked(spec)
    if text.startswith("@") and TELEGRAM_USERNAME.fullmatch(text[1:]):
        return _telegram(text[1:])
    links = find_sources(text)
    if len(links) == 1:
        return links[0]
    if text.lower().startswith(("http://", "https://")):
        return SourceSpec("rss", text)  # any other web address is taken as a feed
    raise SourceError(
        f"{text[:60]!r} is not a source; use @channel, a t.me or x.com link, a feed URL or "
        "KIND:TARGET (telegram:@name, tgweb:name, x:@user, rss:URL, jsonl:PATH)",
        key="unknown",
        spec=text[:60],
    )


def _checked(spec: SourceSpec) -> SourceSpec:
    target = spec.target
    if spec.kind in ("telegram", "tgweb"):
        name = target.removeprefix("@")
        if not TELEGRAM_USERNAME.fullmatch(name):
            raise SourceError(
                f"{target!r} is not a Telegram channel username (5–32 letters)",
                key="telegram-name",
                name=target[:60],
            )
        return _telegram(name) if spec.kind == "telegram" else SourceSpec("tgweb", name.lower())
    if spec.kind == "x":
        name = target.removeprefix("@")
        if not re.fullmatch(_X_NAME, name):
            raise SourceError(
                f"{target!r} is not an X username (1–15 letters, digits or _)",
                key="x-name",
                name=target[:60],
            )
        return SourceSpec("x", "@" + name)
    if spec.kind == "rss" and not target.lower().startswith(("http://", "https://")):
        raise SourceError("an rss: source needs an http(s) URL", key="rss-url")
    return spec
