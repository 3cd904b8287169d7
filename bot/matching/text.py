"""Tokenising and normalising text. Posts and query terms go through the same functions.

Posts are only folded here (case, Unicode variants, Ukrainian letters, look-alikes), never
stemmed or transliterated: word forms and other scripts are expanded once per query term
(see `forms.py`), so matching a post is plain dictionary look-ups.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# URLs and @mentions are skipped; a word is letters/digits joined by inner apostrophes or
# hyphens (`Су-34`, `post-war`, `об'єкт`, `Kalibr's`).
_SKIP = r"(?:https?://|www\.)\S+|\bt\.me/\S+|(?<![\w.])@\w+"
# Combining marks (a stress mark in `Оре́шник`) stay inside the word; folding drops them.
_LETTER = r"(?:[^\W_]|[\u0300-\u036f])"
_WORD = rf"[^\W_]{_LETTER}*(?:['’ʼ`\-‐‑][^\W_]{_LETTER}*)*"
# Links and @mentions are matched (so skipped), words captured: `findall` yields the words
# ('' for a skipped stretch), `finditer` their places.
_WORDS_RE = re.compile(rf"(?:{_SKIP})|({_WORD})")
PART_RE = re.compile(rf"[^\W_]{_LETTER}*(?:['’ʼ`][^\W_]{_LETTER}*)*")
_APOSTROPHES = "'’ʼ`"
_POSSESSIVE = re.compile(r"['’ʼ`]s$")

# Ukrainian and Belarusian letters fold to their Russian counterparts, so `Орєшник`,
# `Іскандер`, `мораторій` meet `Орешник`, `Искандер`, `мораторий`.
_CYRILLIC_FOLD = str.maketrans({"ё": "е", "є": "е", "і": "и", "ї": "и", "ґ": "г", "ў": "у"})
_DROP_APOSTROPHES = str.maketrans(
    dict.fromkeys([*_APOSTROPHES, *map(chr, range(0x300, 0x370))], None)
)
# Lower-case Cyrillic letters whose capitals look like Latin ones (М/M, Х/X, С/C ...), and back.
_CYR_TO_LAT = str.maketrans("авекмнорстухіјѕ", "abekmhopctyxijs")
_LAT_TO_CYR = str.maketrans("abekmhopctyxi", "авекмнорстухі")


@dataclass(frozen=True, slots=True)
class Token:
    """A normalised word and where it stands in the original text."""

    norm: str
    start: int
    end: int


def _letters(word: str) -> tuple[int, int]:
    """How many lower-case Cyrillic and Latin letters a word has."""
    cyr = lat = 0
    for char in word:
        if "а" <= char <= "я" or char in "ёєіїґў":
            cyr += 1
        elif "a" <= char <= "z":
            lat += 1
    return cyr, lat


def script_of(word: str) -> str:
    """'cyr', 'lat', 'mixed' or 'none' (digits only), from the letters of a word."""
    cyr, lat = _letters(word)
    if cyr and lat:
        return "mixed"
    return "cyr" if cyr else "lat" if lat else "none"


def _lower(word: str) -> str:
    return unicodedata.normalize("NFKC", word).casefold()


def _finish(word: str) -> str:
    """The last step of every fold: no apostrophes or stress marks, Russian letters."""
    return word.translate(_DROP_APOSTROPHES).translate(_CYRILLIC_FOLD)


def fold(word: str) -> str:
    """Case, Unicode and Ukrainian/Belarusian letter folding of one word (no look-alikes)."""
    return _finish(_lower(word))


def fold_compound(parts: list[str]) -> list[str]:
    """Fold the parts of one compound (`Су-34` → `cy`, `34`) with look-alike folding.

    Look-alikes are folded only where scripts are mixed or digits appear (codes such as
    `9М729` or `Х-101`); applied everywhere it would merge real words (`ТОР`/`TOP`).
    """
    lowered = [_lower(part) for part in parts]
    joined = "".join(lowered)
    cyr, lat = _letters(joined)
    if cyr and any(char.isdigit() for char in joined):
        lowered = [part.translate(_CYR_TO_LAT) for part in lowered]
    elif cyr and lat:
        table = _LAT_TO_CYR if cyr >= lat else _CYR_TO_LAT
        lowered = [part.translate(table) for part in lowered]
    return [_finish(part) for part in lowered]


PIECE_CHARS = 4096


def _pieces(text: str, size: int = PIECE_CHARS) -> list[str]:
    """The text in pieces of about `size` characters, cut at whitespace (no word, URL or
    mention spans whitespace). One `findall` over a 100,000-character post holds the GIL for
    ~25 ms, stalling the event loop while matching runs on its worker thread; pieces keep
    each call to about a millisecond."""
    if len(text) <= size:
        return [text]
    pieces: list[str] = []
    start = 0
    while len(text) - start > size:
        cut = max(text.rfind(" ", start, start + size), text.rfind("\n", start, start + size))
        if cut <= start:
            cut = start + size  # one enormous "word": no whitespace to cut at
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


class Tokenizer:
    """Splits text into normalised tokens, caching the work done for each distinct word."""

    def __init__(self, cache_size: int = 200_000) -> None:
        self._cache: dict[str, list[tuple[str, int, int]]] = {}
        self._norms: dict[str, list[str]] = {}
        self._cache_size = cache_size

    def _parts(self, word: str) -> list[tuple[str, int, int]]:
        """Normalised parts of one compound word with offsets relative to it."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        pieces = [(m.group(), m.start(), m.end()) for m in PART_RE.finditer(word)]
        last_text, last_start, _last_end = pieces[-1]
        possessive = _POSSESSIVE.search(last_text)
        if possessive and script_of(last_text.casefold()) == "lat":
            trimmed = last_text[: possessive.start()]
            pieces[-1] = (trimmed, last_start, last_start + len(trimmed))
        folded = fold_compound([text for text, _, _ in pieces])
        result = [
            (norm, start, end)
            for norm, (_, start, end) in zip(folded, pieces, strict=True)
            if norm
        ]
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
            self._norms.clear()
        self._cache[word] = result
        self._norms[word] = [norm for norm, _, _ in result]
        return result

    def norms(self, text: str) -> list[str]:
        """Only the normalised words, in order — the fast path when offsets are not needed."""
        norms: list[str] = []
        norms_of = self._norms.get
        for piece in _pieces(text):
            for word in _WORDS_RE.findall(piece):
                if word:
                    found = norms_of(word)
                    if found is None:
                        self._parts(word)
                        found = self._norms[word]
                    norms.extend(found)
        return norms

    def scan(self, text: str) -> tuple[list[str], list[int], list[int]]:
        """Normalised words with their start and end offsets, as three parallel lists."""
        norms: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        for match in _WORDS_RE.finditer(text):
            word = match.group(1)
            if word is None:
                continue
            base = match.start(1)
            for norm, start, end in self._parts(word):
                norms.append(norm)
                starts.append(base + start)
                ends.append(base + end)
        return norms, starts, ends

    def tokenize(self, text: str) -> list[Token]:
        norms, starts, ends = self.scan(text)
        return [Token(*fields) for fields in zip(norms, starts, ends, strict=True)]


def tokenize(text: str) -> list[Token]:
    """Normalised tokens of a text (URLs and @mentions skipped), with character offsets."""
    return Tokenizer().tokenize(text)
