"""Transliteration of query terms between Cyrillic and Latin (never applied to posts).

Names are spelt many ways (`Kinzhal`/`Kinjal`, `Tsirkon`/`Cirkon`), so each direction yields a
few variants; a wrong variant costs nothing, as it simply never occurs in posts.
"""

from __future__ import annotations

from itertools import islice, product

MAX_VARIANTS = 8

# Cyrillic letter → Latin spellings, most common first (BGN/PCGN, then popular alternatives).
_TO_LATIN: dict[str, tuple[str, ...]] = {
    "а": ("a",),
    "б": ("b",),
    "в": ("v",),
    "г": ("g",),
    "д": ("d",),
    "е": ("e",),
    "ж": ("zh", "j"),
    "з": ("z",),
    "и": ("i",),
    "й": ("y", "i"),
    "к": ("k",),
    "л": ("l",),
    "м": ("m",),
    "н": ("n",),
    "о": ("o",),
    "п": ("p",),
    "р": ("r",),
    "с": ("s",),
    "т": ("t",),
    "у": ("u",),
    "ф": ("f",),
    "х": ("kh", "h"),
    "ц": ("ts", "c"),
    "ч": ("ch",),
    "ш": ("sh",),
    "щ": ("shch", "sch"),
    "ъ": ("",),
    "ы": ("y",),
    "ь": ("",),
    "э": ("e",),
    "ю": ("yu", "iu"),
    "я": ("ya", "ia"),
}

# Latin letter groups → Cyrillic candidates, longest groups first.
_TO_CYRILLIC: list[tuple[str, tuple[str, ...]]] = [
    ("shch", ("щ",)),
    ("sch", ("щ",)),
    ("zh", ("ж",)),
    ("kh", ("х",)),
    ("ts", ("ц",)),
    ("tz", ("ц",)),
    ("ch", ("ч",)),
    ("sh", ("ш",)),
    ("ya", ("я",)),
    ("yu", ("ю",)),
    ("yo", ("е",)),
    ("ye", ("е",)),
    ("ia", ("ия", "я")),
    ("iu", ("ию", "ю")),
    ("ei", ("ей",)),
    ("ai", ("ай",)),
    ("oi", ("ой",)),
    ("a", ("а",)),
    ("b", ("б",)),
    ("c", ("к", "ц")),
    ("d", ("д",)),
    ("e", ("е", "э")),
    ("f", ("ф",)),
    ("g", ("г",)),
    ("h", ("х",)),
    ("i", ("и",)),
    ("j", ("ж", "й")),
    ("k", ("к",)),
    ("l", ("л",)),
    ("m", ("м",)),
    ("n", ("н",)),
    ("o", ("о",)),
    ("p", ("п",)),
    ("q", ("к",)),
    ("r", ("р",)),
    ("s", ("с",)),
    ("t", ("т",)),
    ("u", ("у",)),
    ("v", ("в",)),
    ("w", ("в",)),
    ("x", ("кс", "х")),
    ("y", ("ы", "й", "и")),
    ("z", ("з",)),
]


def _variants(choices: list[tuple[str, ...]]) -> list[str]:
    """Spellings built from per-position choices: the first choices first, capped."""
    return ["".join(combo) for combo in islice(product(*choices), MAX_VARIANTS)]


def to_latin(word: str) -> list[str]:
    """Latin spellings of a (folded, lower-case) Cyrillic word; other characters kept."""
    return _variants([_TO_LATIN.get(char, (char,)) for char in word])


def to_cyrillic(word: str) -> list[str]:
    """Cyrillic spellings of a (lower-case) Latin word; other characters kept."""
    choices: list[tuple[str, ...]] = []
    i = 0
    while i < len(word):
        for group, options in _TO_CYRILLIC:
            if word.startswith(group, i):
                choices.append(options)
                i += len(group)
                break
        else:
            choices.append((word[i],))
            i += 1
    return _variants(choices)
