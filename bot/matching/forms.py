"""Expanding a query term into every form it may take in a post, once, when it is indexed.

Russian and Ukrainian words get their full paradigm from the pymorphy3 dictionaries (a
dictionary, not a stemmer, so `Калибр` never reaches `Калибровка`); English words get
regular inflections; capitalised names get their spellings in the other script; names in
the alias table bring their aliases. Every form is folded like a post's tokens.
"""

from __future__ import annotations

from functools import lru_cache

import pymorphy3

from bot.matching.aliases import ALIAS_GROUPS
from bot.matching.text import PART_RE, fold, fold_compound, script_of
from bot.matching.translit import to_cyrillic, to_latin

# A sequence of words, each given as the set of forms that count as that word.
Sequence = tuple[frozenset[str], ...]

_VOWELS = set("aeiou")
MIN_PARSE_SCORE = 0.1


def split_parts(term: str) -> list[str]:
    """The parts of a compound as the tokenizer splits them (`Су-34` → `Су`, `34`)."""
    return PART_RE.findall(term)


def english_forms(word: str) -> set[str]:
    """Regular English inflections of a word, and of its base if it looks inflected."""
    bases = {word}
    if len(word) >= 5:
        if word.endswith("ies"):
            bases.add(word[:-3] + "y")
        elif word.endswith("es"):
            bases.update((word[:-2], word[:-1]))
        elif word.endswith("s") and not word.endswith("ss"):
            bases.add(word[:-1])
        if word.endswith("ed"):
            bases.update((word[:-2], word[:-1]))
        if word.endswith("ing"):
            bases.update((word[:-3], word[:-3] + "e"))
    forms: set[str] = set()
    for base in bases:
        forms.update((base, base + "s", base + "es", base + "ed", base + "ing"))
        if base.endswith("e"):
            forms.update((base + "d", base[:-1] + "ing"))
        if base.endswith("y") and len(base) > 2 and base[-2] not in _VOWELS:
            forms.update((base[:-1] + "ies", base[:-1] + "ied"))
    return forms


class FormExpander:
    """Turns a query term into the word sequences that count as a match for it."""

    def __init__(self) -> None:
        self._ru = pymorphy3.MorphAnalyzer(lang="ru")
        self._uk = pymorphy3.MorphAnalyzer(lang="uk")
        self._aliases: dict[str, tuple[str, ...]] = {}
        for group in ALIAS_GROUPS:
            for name in group:
                self._aliases[self._alias_key(name)] = group
        self.lexeme = lru_cache(maxsize=100_000)(self._lexeme)
        self.expand = lru_cache(maxsize=100_000)(self._expand)

    @classmethod
    def shared(cls) -> FormExpander:
        """One expander per process, created on first use (loading dictionaries takes ~0.2 s)."""
        return _shared_expander()

    @staticmethod
    def _alias_key(term: str) -> str:
        return " ".join(fold_compound(split_parts(term)))

    def _lexeme(self, word: str) -> frozenset[str]:
        """Every form of a Russian or Ukrainian word, folded (the word itself included).

        The Russian dictionary sees the word in Russian spelling (`мораторій` → `мораторий`),
        the Ukrainian one as written; each contributes its likely parses' paradigms.
        """
        forms = {fold(word)}
        uk_parses = self._uk.parse(word)
        for parses in (self._ru.parse(fold(word)), uk_parses):
            for rank, parse in enumerate(parses[:3]):
                if rank == 0 or parse.score >= MIN_PARSE_SCORE:
                    forms.update(fold(form.word) for form in parse.lexeme)
        # A Ukrainian word also brings its Russian paradigm (`ракети` → `ракеты`, `ракетой`).
        uk_lemma = fold(uk_parses[0].normal_form)
        if self._ru.word_is_known(uk_lemma):
            forms.update(fold(form.word) for form in self._ru.parse(uk_lemma)[0].lexeme)
        return frozenset(forms)

    def _known(self, word: str) -> bool:
        return bool(self._ru.word_is_known(word))

    def _word_forms(self, original: str) -> frozenset[str]:
        """Forms of a single word without digits, in both scripts when it is a name."""
        # Folded as a post's word is (a Latin letter in a Cyrillic word becomes Cyrillic).
        folded = fold_compound([original])[0]
        script = script_of(folded)
        capitalised = original[:1].isupper() and not original.isupper()
        acronym = original.isupper() and len(original) > 1
        forms = {folded}
        if acronym:
            forms.add(folded + "s")
        elif script == "cyr":
            forms |= self.lexeme(
                original.casefold() if script_of(fold(original)) == "cyr" else folded
            )
            if capitalised:
                for latin in to_latin(folded):
                    forms.update((latin, latin + "s"))
        elif script == "lat":
            forms |= english_forms(folded)
            if capitalised:
                candidates = to_cyrillic(folded)
                known = [c for c in candidates if self._known(c)] or candidates[:1]
                for candidate in known:
                    forms |= self.lexeme(candidate)
        return frozenset(forms)

    def _spelling(self, spelling: str) -> set[Sequence]:
        parts = split_parts(spelling)
        if not parts:
            return set()
        code = any(char.isdigit() for char in spelling)
        if len(parts) == 1 and not code:
            return {(self._word_forms(parts[0]),)}
        # Codes and compounds (`Су-34`, `Iskander-M`, `X-101`): each part as written, plus
        # the whole in the other script (`Su-34` → `Су-34`), folded like a post's tokens.
        sequences = {tuple(frozenset({p}) for p in fold_compound(parts))}
        lowered = [part.casefold() for part in parts]
        script = script_of("".join(lowered))
        convert = to_latin if script == "cyr" else to_cyrillic if script == "lat" else None
        if convert is not None:
            for variant in zip(*(convert(part) for part in lowered), strict=False):
                sequences.add(tuple(frozenset({p}) for p in fold_compound(list(variant))))
        return sequences

    def phrase_aliases(self, phrase: str) -> set[Sequence]:
        """Sequences for the aliases of a name (one word or several: `New START` → `ДСНВ`)."""
        sequences: set[Sequence] = set()
        for spelling in self._aliases.get(self._alias_key(phrase), ()):
            sequences |= self._spelling(spelling)
        return sequences

    def _expand(self, term: str) -> tuple[Sequence, ...]:
        sequences = self._spelling(term) | self.phrase_aliases(term)
        return tuple(sorted(sequences, key=lambda seq: (len(seq), sorted(seq[0]))))


@lru_cache(maxsize=1)
def _shared_expander() -> FormExpander:
    return FormExpander()


def prefix_form(term: str) -> str:
    """`word*`: the word folded as a post's word would be (look-alikes, `#`, case)."""
    parts = fold_compound(split_parts(term))
    return parts[0] if parts else ""


def exact_sequence(term: str) -> Sequence:
    """`=word`: exactly this form (case and letter variants folded), no morphology."""
    return tuple(frozenset({part}) for part in fold_compound(split_parts(term)) if part)
