"""A query as an FTS5 expression that admits every post the query may match: a candidate filter.

`/search` runs it on the full-text index (`posts_fts`) to reach all stored history, and
confirms each candidate with the matcher, so the filter must never miss a match; admitting a
few posts too many only costs a confirmation. Each positive term becomes the OR of every form
the matcher accepts for it (`term_sequences`), a phrase or compound the AND of its words (each
an OR of forms), `word*` a prefix query; exclusions are left to the matcher, and a /regex/
cannot be expressed at all: a branch holding one has no filter.

The index tokenises differently from Dozor (`unicode61 remove_diacritics 2`): it keeps
`ё`, Ukrainian `і ї є` and Latin look-alike letters in codes as written, and keeps a number
with its unit (`152мм`) as one token, while Dozor folds all of these. So each form is written
in every spelling that folds to it (`искандер` also as `іскандер`, `9m729` also as `9м729`),
numbers as prefixes. Every term is quoted, so nothing a user types is read as FTS syntax.

Known gaps, where a post the matcher would take is not a candidate: a long word typed with a
look-alike letter of the other script inside (`Oрешник` with a Latin `O`: spellings are only
made for codes and words of up to MAX_LOOKALIKE_WORD letters), `ґ`/`ў` (read by Dozor as
`г`/`у`), and a word the index splits where Dozor does not (`об'єкт`, found only as typed);
a unit written onto a number (`мм` of `152мм`) is not a word of the index.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from bot.matching.forms import FormExpander, Sequence, exact_sequence, prefix_form
from bot.matching.index import term_sequences
from bot.matching.query import AllOf, AnyOf, Node, Not, Phrase, Query, Regex, Term
from bot.matching.text import CAPS

# An expression of more terms than this is not worth running: no filter (a bounded scan).
MAX_FTS_TERMS = 4_000
# Spellings of one form; a form with more (`переговорами`: е, е, и, ...) is written as the
# spellings of its longest beginning within this many, as prefixes.
MAX_SPELLINGS = 24
# Words of a phrase the filter asks for (the longest, most distinctive ones).
PHRASE_WORDS = 2
# A form cut shorter than this would open thousands of index terms as a prefix.
MIN_FTS_PREFIX = 4

# Latin letters and the Cyrillic ones that look the same (`9М729` typed with a Cyrillic `М`,
# `Tу-95` with a Latin `T`): Dozor folds a code, or a word that mixes the two, to one script.
_LOOKALIKE = {
    **dict(zip("abekmhopctyxi", "авекмнорстухі", strict=True)),
    **dict(zip("авекмнорстухі", "abekmhopctyxi", strict=True)),
}
# Words this short (abbreviations, parts of codes: `Су`, `СНВ`) are the ones typed with
# look-alike letters; longer ones rarely, and their spellings would be too many.
MAX_LOOKALIKE_WORD = 5
_VOWELS = set("аеёиоуыэюяіїє")
_RUSSIAN_ONLY = set("ыэъё")
_DIGITS = set("0123456789")


@dataclass(frozen=True, slots=True)
class _Expr:
    """FTS5 expression text, and how many terms it holds (its cost)."""

    text: str
    terms: int


def fts_quote(text: str, *, prefix: bool = False) -> str:
    """One FTS5 string, quoted (`"` doubled), so the user's text is never FTS syntax."""
    return '"' + text.replace('"', '""') + '"' + ("*" if prefix else "")


def _has_token(text: str) -> bool:
    # An FTS string without a letter or digit is an empty phrase, which matches nothing.
    return any(char.isalnum() for char in text)


def _choices(form: str, *, ukrainian: bool, lookalike: bool) -> list[tuple[str, ...]]:
    """Per letter of a folded form, the letters a text may have in its place: Ukrainian
    `і`/`ї` for `и` and `є` for `е`, a look-alike letter of the other script."""
    choices: list[tuple[str, ...]] = []
    for index, char in enumerate(form):
        letters = [char]
        if ukrainian and char == "и":
            letters.append("і")
            if index == 0 or form[index - 1] in _VOWELS:
                letters.append("ї")
        elif ukrainian and char == "е":
            letters.append("є")
        for letter in tuple(letters):
            if lookalike and letter in _LOOKALIKE:
                letters.append(_LOOKALIKE[letter])
        choices.append(tuple(dict.fromkeys(letters)))
    return choices


def _combinations(choices: list[tuple[str, ...]]) -> set[str]:
    return {"".join(letters) for letters in product(*choices)}


def _count(choices: list[tuple[str, ...]]) -> int:
    total = 1
    for letters in choices:
        total *= len(letters)
    return total


def spellings(form: str) -> set[tuple[str, bool]]:
    """`(text, is_prefix)`: FTS terms that together find every token of the index that Dozor
    folds to `form` (a folded word form as the matcher holds it)."""
    form = form.removeprefix(CAPS)  # caps-only acronyms: the index ignores case anyway
    if not _has_token(form):
        return set()
    if set(form) <= _DIGITS:
        # `152мм` is one token of the index but two words for Dozor (`152`, `мм`).
        return {(form, True)}
    code = bool(_DIGITS & set(form)) or len(form) == 1
    cyrillic = any("а" <= char <= "я" for char in form)
    ukrainian = cyrillic and not code and not _RUSSIAN_ONLY & set(form)
    choices = _choices(
        form, ukrainian=ukrainian, lookalike=code or len(form) <= MAX_LOOKALIKE_WORD
    )
    if _count(choices) > MAX_SPELLINGS and not code:
        # Ukrainian spellings are the likelier: look-alikes give way to them first.
        choices = _choices(form, ukrainian=ukrainian, lookalike=False)
    # Russian `ё` (Dozor reads it as `е`): at most one in a word.
    found = {(form, False)}
    found.update((form[:i] + "ё" + form[i + 1 :], False) for i, c in enumerate(form) if c == "е")
    if _count(choices) <= MAX_SPELLINGS:
        found.update((spelling, False) for spelling in _combinations(choices))
        return found
    # Too many: every spelling of the longest beginning that has few enough, as a prefix.
    cut = 0
    while cut < len(form) and _count(choices[: cut + 1]) <= MAX_SPELLINGS:
        cut += 1
    if cut >= MIN_FTS_PREFIX:
        found.update((spelling, True) for spelling in _combinations(choices[:cut]))
    return found


def _any_of(parts: list[_Expr]) -> _Expr:
    if len(parts) == 1:
        return parts[0]
    return _Expr("(" + " OR ".join(p.text for p in parts) + ")", sum(p.terms for p in parts))


def _all_of(parts: list[_Expr]) -> _Expr:
    if len(parts) == 1:
        return parts[0]
    return _Expr("(" + " AND ".join(p.text for p in parts) + ")", sum(p.terms for p in parts))


def _forms(forms: frozenset[str]) -> _Expr | None:
    """One word position: any of its forms, in any spelling (None: nothing expressible)."""
    terms = sorted({term for form in forms for term in spellings(form)})
    if not terms:
        return None
    return _any_of([_Expr(fts_quote(text, prefix=prefix), 1) for text, prefix in terms])


def _sequence(sequence: Sequence) -> _Expr | None:
    """Words in a row (a phrase, a compound): the most distinctive of them must be in the
    post. Adjacency is left to the matcher (a word may have many forms, which an FTS phrase
    cannot hold), and so are the other words: two narrow a long phrase enough, and each word
    adds its forms' spellings to the expression."""
    distinctive = sorted(
        range(len(sequence)),
        key=lambda i: -min((len(form.removeprefix(CAPS)) for form in sequence[i]), default=0),
    )[:PHRASE_WORDS]
    parts = [_forms(sequence[i]) for i in sorted(distinctive)]
    known = [part for part in parts if part is not None]
    return _all_of(known) if known else None


def _words(sequences: tuple[Sequence, ...], literal: str) -> _Expr | None:
    """Any of the sequences, or the text as the user typed it (the index's own reading of it
    also finds what folding cannot reach, such as `об'єкт`, which it splits at the apostrophe)."""
    parts: list[_Expr] = []
    for sequence in sequences:
        expr = _sequence(sequence)
        if expr is None:
            return None  # a variant the index cannot see: it must not be filtered out
        parts.append(expr)
    if _has_token(literal):
        parts.append(_Expr(fts_quote(literal), 1))
    return _any_of(parts) if parts else None


def _term(node: Term, expander: FormExpander) -> _Expr | None:
    if node.prefix:
        terms = {text for text, _ in spellings(prefix_form(node.text))}
        if _has_token(node.text):
            terms.add(node.text)
        if not terms:
            return None
        return _any_of([_Expr(fts_quote(text, prefix=True), 1) for text in sorted(terms)])
    if node.exact:
        return _words((exact_sequence(node.text),), node.text)
    return _words(term_sequences(node, expander), node.text)


def _node(node: Node, expander: FormExpander) -> _Expr | None:
    """The node's filter, or None when it admits every post (an exclusion, a /regex/)."""
    if isinstance(node, Term):
        return _term(node, expander)
    if isinstance(node, Phrase):
        return _words(term_sequences(node, expander), " ".join(node.words))
    if isinstance(node, Regex | Not):
        # What a post lacks says nothing about which posts to look at; a regex has no words.
        return None
    children = [_node(child, expander) for child in node.children]
    if isinstance(node, AnyOf):
        if any(child is None for child in children):
            return None
        either = [child for child in children if child is not None]
        combined = _any_of(either)
        return combined if combined.terms <= MAX_FTS_TERMS else None
    assert isinstance(node, AllOf)
    # Any subset of an AND's filters is still a filter: keep the cheapest that fit.
    kept: list[_Expr] = []
    for child in sorted((c for c in children if c is not None), key=lambda c: c.terms):
        if sum(k.terms for k in kept) + child.terms <= MAX_FTS_TERMS or not kept:
            kept.append(child)
    return _all_of(kept) if kept else None


def fts_filter(query: Query, expander: FormExpander | None = None) -> str | None:
    """The FTS5 MATCH expression admitting every post `query` matches, or None when the query
    cannot be narrowed by the index (a /regex/ in an OR, say): the caller then scans."""
    expr = _node(query.root, expander or FormExpander.shared())
    if expr is None or expr.terms > MAX_FTS_TERMS:
        return None
    return expr.text
