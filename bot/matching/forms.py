"""Expanding a query term into every form it may take in a post, once, when it is indexed.

Russian and Ukrainian words get their full paradigm from the pymorphy3 dictionaries (a
dictionary, not a stemmer, so `Калибр` never reaches `Калибровка`), or, for a word no
dictionary knows (`Ярс`), the paradigm its ending implies; English words get regular
inflections; names (capitalised words and acronyms) get their spellings in the other script;
names in the alias table bring their aliases. A compound (`Искандер-М`) is its parts, each
expanded as a word or a code. Every form is folded like a post's tokens.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import islice, product

import pymorphy3

from bot.matching.aliases import ALIAS_GROUPS
from bot.matching.text import (
    CAPS,
    fold,
    fold_code,
    fold_compound,
    fold_lookalikes,
    is_code,
    script_of,
    split_word,
)
from bot.matching.translit import to_cyrillic, to_latin

# A sequence of words, each given as the set of forms that count as that word.
Sequence = tuple[frozenset[str], ...]

_VOWELS = set("aeiou")
MIN_PARSE_SCORE = 0.1
# A word part of a compound gets its morphology from this length on: shorter ones (`Су`,
# `Ту`, `Ми`) are abbreviations whose dictionary readings (`ту` = `тот`) would be wrong.
MIN_INFLECTED_PART = 3
# An acronym typed in capitals with this many letters matches only words written in capitals
# (`ПРО` is missile defence, not the preposition `про`; `INF` is not `Inf.`).
CAPS_ONLY_LETTERS = range(2, 6)
MAX_ALIAS_VARIANTS = 16

# Endings of a Russian or Ukrainian noun no dictionary knows, by its last letter (folded:
# Ukrainian `Ярсі`, `Ярсів`, `Ярсові` are `ярси`, `ярсив`, `ярсови`).
_CONSONANT_ENDINGS = ("", *"а у ом ем е ы и ов ев ив ам ами ах ови".split())
_GUESSED_ENDINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    # last letter: (what to cut, endings)
    "а": ("а", ("а", "ы", "и", "е", "у", "ой", "ою", "ам", "ами", "ах", "")),
    "я": ("я", ("я", "и", "е", "ю", "ей", "ею", "ям", "ями", "ях")),
    "й": ("й", ("й", "я", "ю", "ем", "е", "и", "ев", "ям", "ями", "ях", "ив")),
    "ь": ("ь", ("ь", "я", "ю", "ем", "е", "и", "ей", "ям", "ями", "ях")),
}
# A Cyrillic acronym ending in a consonant takes case endings (`МИДа`, `МИДом`, `ВУЗы`).
_ACRONYM_ENDINGS = ("а", "у", "ом", "е", "ы", "ов")
# Ukrainian surnames in -о decline as masculine nouns (`Лукашенка`, `Лукашенкові`).
_SURNAME_O_ENDINGS = ("а", "у", "ом", "ови", "ове")


def split_parts(term: str) -> list[str]:
    """The parts of a compound as the tokenizer splits them (`Су-34` → `Су`, `34`)."""
    return [text for text, _, _ in split_word(term)]


def _is_consonant(char: str) -> bool:
    return "а" <= char <= "я" and char not in "аеиоуыэюяйь"


def guessed_forms(word: str) -> set[str]:
    """A paradigm for a Cyrillic noun no dictionary knows, from its ending (`ярс` → `ярса`,
    `ярсом`, `ярсами` ...). Words ending in other vowels (`шоу`, `ЦАХАЛ`-style loans) are
    taken as indeclinable."""
    if len(word) < 3:
        return {word}
    last = word[-1]
    if _is_consonant(last):
        return {word + ending for ending in _CONSONANT_ENDINGS}
    rule = _GUESSED_ENDINGS.get(last)
    if rule is None:
        return {word}
    cut, endings = rule
    stem = word[: -len(cut)]
    return {stem + ending for ending in endings}


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
        # Interned form sets and forms: many terms expand to the same sets (`Орешник`,
        # `Орешника` and `Oreshnik` share their Russian forms); the index and these caches
        # hold one copy of each, however many terms and subscriptions use it.
        self._form_sets: dict[frozenset[str], frozenset[str]] = {}
        self._forms: dict[str, str] = {}

    def share(self, forms: frozenset[str]) -> frozenset[str]:
        """The interned copy of a form set (its forms interned too)."""
        shared = self._form_sets.get(forms)
        if shared is None:
            intern = self._forms.setdefault
            shared = frozenset(intern(form, form) for form in forms)
            self._form_sets[shared] = shared
        return shared

    @classmethod
    def shared(cls) -> FormExpander:
        """One expander per process, created on first use (loading dictionaries takes ~0.2 s)."""
        return _shared_expander()

    @staticmethod
    def _alias_key(term: str) -> str:
        return " ".join(" ".join(fold_compound(split_parts(word))) for word in term.split())

    def _lexeme(self, word: str) -> frozenset[str]:
        """Every form of a Russian or Ukrainian word, folded (the word itself included).

        The Russian dictionary sees the word in Russian spelling (`мораторій` → `мораторий`),
        the Ukrainian one as written; each contributes its likely parses' paradigms. A word
        neither knows (`ярс`) gets the paradigm its ending implies.
        """
        forms = {fold(word)}
        ru_parses = self._ru.parse(fold(word))
        uk_parses = self._uk.parse(word)
        for parses in (ru_parses, uk_parses):
            for rank, parse in enumerate(parses[:3]):
                if rank == 0 or parse.score >= MIN_PARSE_SCORE:
                    forms.update(fold(form.word) for form in parse.lexeme)
        # A Ukrainian word also brings its Russian paradigm (`ракети` → `ракеты`, `ракетой`).
        uk_lemma = fold(uk_parses[0].normal_form)
        if self._ru.word_is_known(uk_lemma):
            forms.update(fold(form.word) for form in self._ru.parse(uk_lemma)[0].lexeme)
        folded = fold(word)
        if len(forms) == 1 and script_of(folded) == "cyr":
            forms |= guessed_forms(folded)
        surname = any("Surn" in parse.tag for parse in (*ru_parses[:3], *uk_parses[:3]))
        if folded.endswith("о") and (surname or folded.endswith("енко")):
            forms.update(folded[:-1] + ending for ending in _SURNAME_O_ENDINGS)
        return frozenset(forms)

    def _known(self, word: str) -> bool:
        return bool(self._ru.word_is_known(word))

    def _has_aliases(self, word: str) -> bool:
        return self._alias_key(word) in self._aliases

    def _acronym_forms(self, original: str, folded: str) -> set[str]:
        """An acronym (`НАТО`, `ICBM`, `МИД`): its plural and case forms, and, unless the
        alias table names its other-script spellings (`ПРО` = `ABM`, not `PRO`), its
        letter-by-letter transliteration (`НАТО` = `NATO`)."""
        spellings = {folded}
        if not self._has_aliases(original):
            convert = to_latin if script_of(folded) == "cyr" else to_cyrillic
            spellings.update(convert(folded))
        forms: set[str] = set()
        for spelling in spellings:
            forms.update((spelling, spelling + "s"))
            if script_of(spelling) == "cyr" and _is_consonant(spelling[-1]):
                forms.update(spelling + ending for ending in _ACRONYM_ENDINGS)
        return forms

    def _word_forms(self, original: str, *, alone: bool = True) -> frozenset[str]:
        """Forms of a single word without digits, in both scripts when it is a name.

        `alone`: the word is a whole term; an acronym of 2–5 capitals is then caps-only (its
        forms carry the CAPS mark and meet only words written in capitals).
        """
        # Folded as a post's word is (a Latin letter in a Cyrillic word becomes Cyrillic).
        folded = fold_compound([original])[0]
        script = script_of(folded)
        capitalised = original[:1].isupper() and not original.isupper()
        acronym = original.isupper() and len(original) > 1 and original.isalpha()
        forms = {folded}
        if acronym:
            forms = self._acronym_forms(original, folded)
            if len(original) in CAPS_ONLY_LETTERS:
                if alone:
                    return frozenset(CAPS + form for form in forms)
                return frozenset(forms)
            # A longer word in capitals may be a name typed with caps lock (`ОРЕШНИК`): it
            # also takes the forms of the word.
            capitalised = True
        if script == "cyr":
            forms |= self.lexeme(
                original.casefold() if script_of(fold(original)) == "cyr" else folded
            )
            if capitalised and _is_consonant(folded[-1]):
                # A name's plurals and Ukrainian forms even where the dictionary knows it as
                # singular-only (`Абрамсів`, `Байрактарів`, `Пэтриотов`).
                forms |= guessed_forms(folded)
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

    def _part_forms(self, original: str, folded: str, *, code: bool, last: bool) -> set[str]:
        """Forms of one part of a compound: a code part as written (look-alikes folded, an
        English plural on a final number: `SSC-8s`), a short word part as written in both
        scripts, a longer one with its morphology (`Искандерами-М`)."""
        if code:
            # Its letters also in their other-script spellings: `Х-101` = `Kh-101`, `S-400` =
            # `С-400`, `Ту-95МС` = `Tu-95MS` (look-alikes alone would make it `95mc`).
            forms = {folded}
            lowered = fold(original)
            script = script_of(lowered)
            if script == "cyr":
                forms.update(to_latin(lowered))
            elif script == "lat":
                forms.update(fold_code(v) for v in to_cyrillic(lowered))
            if last and folded[-1:].isdigit():
                forms.add(folded + "s")
            return forms
        if len(folded) >= MIN_INFLECTED_PART:
            return set(self._word_forms(original, alone=False))
        forms = fold_lookalikes(folded)  # `РС-24` typed with Latin P and C
        lowered = fold(original)
        script = script_of(lowered)
        if script == "cyr":
            forms.update(to_latin(lowered))
        elif script == "lat":
            forms.update(to_cyrillic(lowered))
        return forms

    def _spelling(self, spelling: str, *, alone: bool = True) -> set[Sequence]:
        """The sequences one written word (or compound, or code) may take in a post; `alone`
        as for `_word_forms`."""
        parts = split_parts(spelling)
        if not parts:
            return set()
        compound = len(parts) > 1
        if not compound and not is_code(parts[0], False):
            return {(self._word_forms(parts[0], alone=alone),)}
        folded = fold_compound(parts)
        return {
            tuple(
                frozenset(
                    self._part_forms(
                        part, norm, code=is_code(norm, compound), last=i == len(parts) - 1
                    )
                )
                for i, (part, norm) in enumerate(zip(parts, folded, strict=True))
            )
        }

    def word_sequences(self, word: str, *, alone: bool = True) -> list[Sequence]:
        """Sequences for one written word of a query: its one-word variants merged into one
        form set (so a phrase combines few), its compound and alias sequences kept. `alone`:
        the word is a whole term (inside "quotes" an acronym is not caps-only)."""
        variants = self.expand(word, alone)
        singles = [seq[0] for seq in variants if len(seq) == 1]
        merged: list[Sequence] = [(frozenset().union(*singles),)] if singles else []
        return merged + [seq for seq in variants if len(seq) > 1]

    def phrase_sequences(self, words: list[str], limit: int) -> set[Sequence]:
        """Sequences for words that must stand in a row, each in any of its forms."""
        choices = [self.word_sequences(word, alone=False) for word in words]
        return {
            tuple(form for part in combo for form in part)
            for combo in islice(product(*choices), limit)
        }

    def phrase_aliases(self, phrase: str) -> set[Sequence]:
        """Sequences for the aliases of a name (one word, several, or spelled out:
        `New START` → `ДСНВ`, `РСМД` → `ракеты средней и меньшей дальности`). An acronym
        from the table is caps-only wherever the name was written (`"missile defence"` finds
        `ПРО`, never `про`)."""
        sequences: set[Sequence] = set()
        for spelling in self._aliases.get(self._alias_key(phrase), ()):
            words = spelling.split()
            if len(words) == 1:
                sequences |= self._spelling(spelling)
            else:
                sequences |= self.phrase_sequences(words, MAX_ALIAS_VARIANTS)
        return sequences

    def _expand(self, term: str, alone: bool = True) -> tuple[Sequence, ...]:
        sequences = self._spelling(term, alone=alone) | self.phrase_aliases(term)
        ordered = sorted(sequences, key=lambda seq: (len(seq), sorted(seq[0])))
        return tuple(tuple(map(self.share, sequence)) for sequence in ordered)


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
