"""Tokenising and normalising text; posts and query terms go through the same functions."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# A word is a run of letters/digits; hyphens and apostrophes split words, so that `Су-34`
# becomes the two tokens `су` `34` and a query for `Су-34` is matched as that phrase.
_WORD_RE = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class Token:
    """A normalised word and where it stands in the original text."""

    norm: str
    start: int
    end: int


def normalise_word(word: str) -> str:
    """Fold case and Unicode variants so that spelling differences do not matter."""
    return unicodedata.normalize("NFKC", word).casefold().replace("ё", "е")


def tokenize(text: str) -> list[Token]:
    """Split text into normalised word tokens with their character offsets."""
    return [Token(normalise_word(m.group()), m.start(), m.end()) for m in _WORD_RE.finditer(text)]
