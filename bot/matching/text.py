"""Tokenising and normalising text. Posts and query terms go through the same functions.

Posts are only folded here (case, Unicode variants, Ukrainian letters, look-alikes), never
stemmed or transliterated: word forms and other scripts are expanded once per query term
(see `forms.py`), so matching a post is plain dictionary look-ups.

A hyphenated word is its parts (`Орешником-2` is `орешником`, `2`); a number with a unit
(`152мм`) is the number and the unit. Sentence ends become a BOUNDARY token, so that words on
either side are never adjacent; words written in capitals (`НАТО`, `ICBMs`) are reported, so
that a query acronym can insist on them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# URLs and @mentions are skipped; a word is letters/digits joined by inner apostrophes or
# hyphens (`Су-34`, `post-war`, `об'єкт`, `Kalibr's`).
_SKIP = r"(?:https?://|www\.)\S+|\bt\.me/\S+|(?<![\w.])@\w+"
SKIP_RE = re.compile(_SKIP)
# Combining marks (a stress mark in `Оре́шник`) stay inside the word; folding drops them.
_LETTER = r"(?:[^\W_]|[\u0300-\u036f])"
_WORD = rf"[^\W_]{_LETTER}*(?:['’ʼ`\-‐‑][^\W_]{_LETTER}*)*"
# A sentence ends at `.` after a word of two or more letters (not `U.S.`, `г.`, `3.5`), at
# `!`, `?`, `…` (closing quotes or brackets may stand between), each before a space or the
# end; and at a line break.
# The look-ahead first: it fails at once on the spaces between words, where the regex is
# tried most.
_END = r"(?=[.!?…»\"”’)\]\n])(?:(?:(?<=[^\W\d_]{2})[»\"”’)\]]*\.+|[!?…]+)(?=\s|$)|\n)"
# Links and @mentions are matched (so skipped), words and sentence ends captured: `findall`
# yields them ('' for a skipped stretch), `finditer` their places.
_WORDS_RE = re.compile(rf"(?:{_SKIP})|({_WORD}|{_END})")
PART_RE = re.compile(rf"[^\W_]{_LETTER}*(?:['’ʼ`][^\W_]{_LETTER}*)*")
# A number followed by a unit written in lower case (`152мм`, `10kt`) is two words; codes
# keep their letters (`9М729`, `34М`, `8s`).
_NUMBER_UNIT = re.compile(r"(\d+)([^\W\d_]{2,})")
# The token standing for a sentence end, and the mark of a word written in capitals; neither
# can come out of folding a word.
BOUNDARY = "\x00"
CAPS = "\x01"
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


def split_word(word: str) -> list[tuple[str, int, int]]:
    """The parts of a word with their offsets: `Су-34` → `Су`, `34`; `152мм` → `152`, `мм`."""
    parts: list[tuple[str, int, int]] = []
    for match in PART_RE.finditer(word):
        text, start = match.group(), match.start()
        unit = _NUMBER_UNIT.fullmatch(text)
        if unit is not None and unit.group(2).islower():
            cut = unit.end(1)
            parts.append((text[:cut], start, start + cut))
            parts.append((text[cut:], start + cut, match.end()))
        else:
            parts.append((text, start, match.end()))
    return parts


def is_code(part: str, compound: bool) -> bool:
    """Whether a part is a code (`9М729`, `34`, the `М` of `Искандер-М`), not a word."""
    return any(char.isdigit() for char in part) or (compound and len(part) == 1)


def is_caps(part: str) -> bool:
    """Whether a word is written in capitals: its first two letters are (`НАТО`, `МИДа`)."""
    return len(part) >= 2 and part[0].isupper() and part[1].isupper()


def fold_compound(parts: list[str]) -> list[str]:
    """Fold the parts of one word (`Искандером-М` → `искандером`, `m`).

    A word part keeps its script, so that its morphology still applies; only where one part
    mixes scripts (`Oрешник` with a Latin O) are its letters folded to the script of most of
    them. A code part (`9М729`, the `М` of `Искандер-М`) has its look-alike letters folded to
    Latin. Applied to ordinary words, look-alike folding would merge real words (`ТОР`/`TOP`).
    """
    compound = len(parts) > 1
    folded: list[str] = []
    for part in parts:
        lowered = _lower(part)
        if is_code(lowered, compound):
            folded.append(fold_code(lowered))
            continue
        cyr, lat = _letters(lowered)
        if cyr and lat:
            lowered = lowered.translate(_LAT_TO_CYR if cyr >= lat else _CYR_TO_LAT)
        folded.append(_finish(lowered))
    return folded


def fold_code(part: str) -> str:
    """One code part folded as in a post (`М` → `m`, `9М729` → `9m729`)."""
    return _finish(_lower(part).translate(_CYR_TO_LAT))


def fold_lookalikes(word: str) -> set[str]:
    """A folded short word in both scripts' look-alike letters (`рс` → `рс`, `pc`)."""
    return {word, word.translate(_CYR_TO_LAT), word.translate(_LAT_TO_CYR)}


def masked(text: str) -> str:
    """The text with URLs and @mentions blanked out (same length, so offsets hold)."""
    return SKIP_RE.sub(lambda match: " " * len(match.group()), text)


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


class _CapsNorms(list[str]):
    """A word's normalised parts, some of them written in capitals (`caps`: their indexes)."""

    __slots__ = ("caps",)

    def __init__(self, norms: list[str], caps: list[int]) -> None:
        super().__init__(norms)
        self.caps = caps


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
        if not word[0].isalnum():
            result = [(BOUNDARY, 0, len(word))]
            norms: list[str] = [BOUNDARY]
        else:
            pieces = split_word(word)
            last_text, last_start, _last_end = pieces[-1]
            possessive = _POSSESSIVE.search(last_text)
            if possessive and script_of(last_text.casefold()) == "lat":
                trimmed = last_text[: possessive.start()]
                pieces[-1] = (trimmed, last_start, last_start + len(trimmed))
            folded = fold_compound([text for text, _, _ in pieces])
            kept = [
                (norm, start, end, is_caps(text))
                for norm, (text, start, end) in zip(folded, pieces, strict=True)
                if norm
            ]
            result = [(norm, start, end) for norm, start, end, _ in kept]
            norms = [norm for norm, _, _ in result]
            caps = [index for index, (*_, upper) in enumerate(kept) if upper]
            if caps:
                norms = _CapsNorms(norms, caps)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
            self._norms.clear()
        self._cache[word] = result
        self._norms[word] = norms
        return result

    def read(self, text: str) -> tuple[list[str], list[int]]:
        """The normalised words in order (sentence ends as BOUNDARY), and the indexes of those
        written in capitals — the fast path, without offsets."""
        norms: list[str] = []
        caps: list[int] = []
        norms_of = self._norms.get
        for piece in _pieces(text):
            for word in _WORDS_RE.findall(piece):
                if word:
                    found = norms_of(word)
                    if found is None:
                        self._parts(word)
                        found = self._norms[word]
                    if found.__class__ is _CapsNorms:
                        base = len(norms)
                        caps.extend(base + index for index in found.caps)
                    norms.extend(found)
        return norms, caps

    def norms(self, text: str) -> list[str]:
        """Only the normalised words, in order (sentence ends as BOUNDARY)."""
        return self.read(text)[0]

    def scan(self, text: str) -> tuple[list[str], list[int], list[int]]:
        """Normalised words with their start and end offsets, as three parallel lists
        (the same words as `read`, sentence ends included)."""
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
        return [
            Token(*fields)
            for fields in zip(norms, starts, ends, strict=True)
            if fields[0] != BOUNDARY
        ]


def tokenize(text: str) -> list[Token]:
    """Normalised tokens of a text (URLs and @mentions skipped), with character offsets."""
    return Tokenizer().tokenize(text)
