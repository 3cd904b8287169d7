"""Every text a person sees, from Fluent catalogues (`locales/<language>/*.ftl`), with plurals.

Handlers and renderers name messages (`t("subscribe-done", query=...)`) and never hold prose.
A message missing from a language falls back to English; one missing everywhere is a bug and
raises. Arguments are inserted as given: the caller escapes user text for Telegram's HTML.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from babel.dates import format_datetime, format_interval, format_skeleton
from fluent.runtime import FluentBundle, FluentResource

log = logging.getLogger(__name__)

LOCALES = Path(__file__).parent / "locales"
ENGLISH = "en"
RUSSIAN = "ru"
LANGUAGES = (RUSSIAN, ENGLISH)  # in the order /lang offers them
# Telegram language codes answered in Russian: our Ukrainian and Belarusian users read it.
_RUSSIAN_READERS = {"ru", "uk", "be"}

Argument = str | int | float | Decimal


class Notify(Protocol):
    """Tells the admins something, by message id: each reads it in their own language."""

    async def __call__(self, key: str, /, **args: Argument) -> None: ...


def language_for(code: str | None) -> str:
    """The catalogue for a Telegram `language_code` (`ru`, `uk`, `be` → Russian, else English)."""
    base = (code or "").split("-")[0].strip().lower()
    return RUSSIAN if base in _RUSSIAN_READERS else ENGLISH


class MissingText(LookupError):
    """A message id no catalogue has: a bug, caught by the tests."""


class Texts:
    """The messages of one language, with English behind it for anything not translated."""

    def __init__(
        self, language: str, bundle: FluentBundle, fallback: Texts | None, *, strict: bool
    ) -> None:
        self.language = language
        self._bundle = bundle
        self._fallback = fallback
        self._strict = strict

    def __call__(self, key: str, /, **args: Argument) -> str:
        if not self._bundle.has_message(key):
            if self._fallback is None:
                raise MissingText(key)
            return self._fallback(key, **args)
        message = self._bundle.get_message(key)
        if message.value is None:
            raise MissingText(f"{key} has no value (only attributes)")
        text, errors = self._bundle.format_pattern(message.value, args)
        if errors:
            if self._strict:
                raise ValueError(f"{self.language}:{key}: {errors}")
            log.warning("text %s:%s: %s", self.language, key, errors)
        return str(text)

    def has(self, key: str) -> bool:
        return bool(self._bundle.has_message(key))

    def interval(self, start: date, end: date) -> str:
        """Two dates as a range in this language (`27–28 ноября`, `November 27 – 28`); one
        date when they are the same day."""
        if start == end:
            return str(format_skeleton("MMMMd", start, locale=self.language))
        return str(format_interval(start, end, "MMMMd", locale=self.language))

    def date(self, moment: datetime, pattern: str) -> str:
        """A date or time in this language (`d MMMM` → `28 ноября`), a CLDR pattern."""
        return str(format_datetime(moment, pattern, tzinfo=moment.tzinfo, locale=self.language))


class Catalog:
    """All languages' texts, loaded once at start (nothing happens at import time)."""

    def __init__(self, root: Path = LOCALES, *, strict: bool = False) -> None:
        self._sources: dict[str, dict[str, str]] = {}
        self._texts: dict[str, Texts] = {}
        english = self._load(root, ENGLISH, None, strict)
        self._texts[ENGLISH] = english
        for language in LANGUAGES:
            if language != ENGLISH:
                self._texts[language] = self._load(root, language, english, strict)

    def _load(self, root: Path, language: str, fallback: Texts | None, strict: bool) -> Texts:
        bundle = FluentBundle([language], use_isolating=False)
        files = sorted((root / language).glob("*.ftl"))
        if not files:
            raise FileNotFoundError(f"no catalogue for {language!r} in {root}")
        sources: dict[str, str] = {}
        for path in files:
            text = path.read_text(encoding="utf-8")
            sources[path.name] = text
            resource = FluentResource(text)
            bundle.add_resource(resource)
        self._sources[language] = sources
        return Texts(language, bundle, fallback, strict=strict)

    def texts(self, language: str | None) -> Texts:
        """The texts of a language this catalogue has, English otherwise."""
        return self._texts.get(language or ENGLISH, self._texts[ENGLISH])

    def __getitem__(self, language: str) -> Texts:
        return self.texts(language)

    @property
    def languages(self) -> Iterable[str]:
        return tuple(self._texts)

    def sources(self, language: str) -> Mapping[str, str]:
        """The catalogue files of a language (name → text), for tests that check them."""
        return self._sources[language]
