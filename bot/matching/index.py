"""The subscription index: which saved queries does a post match, without trying them all.

Each query is compiled once into clauses over shared atoms (a term in all the forms it may
take in a post, a phrase, a prefix, a regex; see `QueryIndex`). A post is tokenised and
folded once; the atoms it contains are found by look-ups, and only queries filed under those
atoms are looked at — so the cost per post follows the post and the queries it matches, not
the number of subscriptions. Identical queries of different subscribers are handled once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain, islice, pairwise, product
from typing import Any

import re2

from bot.domain import Span, Subscription
from bot.matching.forms import FormExpander, Sequence, exact_sequence, prefix_form
from bot.matching.query import (
    MIN_PREFIX_CHARS,
    AllOf,
    Node,
    Not,
    Phrase,
    Regex,
    Term,
    parse_query,
    re2_options,
)
from bot.matching.text import CAPS, Tokenizer, masked

log = logging.getLogger(__name__)

MAX_PHRASE_VARIANTS = 32


@dataclass(frozen=True, slots=True)
class Hit:
    """A subscription that matched a post, and the words that made it match."""

    subscription: Subscription
    spans: tuple[Span, ...]


class PostView:
    """A post's words arranged for look-ups, with a memo of terms already evaluated.

    Offsets are only worked out when spans are asked for: most posts match nothing.
    """

    __slots__ = (
        "_ends",
        "_masked",
        "_starts",
        "_tokenizer",
        "caps",
        "memo",
        "norms",
        "positions",
        "present",
        "text",
    )

    def __init__(self, text: str, tokenizer: Tokenizer) -> None:
        # RE2 needs valid UTF-8; a lone surrogate becomes `?` (one character: offsets hold).
        self.text = text.encode("utf-8", "replace").decode("utf-8")
        self._tokenizer = tokenizer
        norms, caps = tokenizer.read(self.text)
        self.norms = norms
        positions: dict[str, list[int]] = {}
        for index, norm in enumerate(norms):
            found = positions.get(norm)
            if found is None:
                positions[norm] = [index]
            else:
                found.append(index)
        # A word written in capitals is also found under its CAPS-marked form, which only
        # caps-only query acronyms (`ПРО`, `INF`) use.
        self.caps = set(caps)
        for index in caps:
            positions.setdefault(CAPS + norms[index], []).append(index)
        self.positions = positions
        self._masked: str | None = None
        self.memo: dict[object, Any] = {}
        # Atoms the index found in the post (None outside the index: evaluate everything).
        self.present: set[object] | None = None
        self._starts: list[int] | None = None
        self._ends: list[int] = []

    def _offsets(self) -> tuple[list[int], list[int]]:
        if self._starts is None:
            _, self._starts, self._ends = self._tokenizer.scan(self.text)
        return self._starts, self._ends

    @property
    def masked(self) -> str:
        """The text with URLs and @mentions blanked, for /regex/ terms."""
        if self._masked is None:
            self._masked = masked(self.text)
        return self._masked

    def has(self, index: int, forms: frozenset[str]) -> bool:
        """Whether the word at `index` is one of `forms` (caps-only forms included)."""
        norm = self.norms[index]
        return norm in forms or (index in self.caps and CAPS + norm in forms)

    def occurrences(self, forms: frozenset[str]) -> list[int]:
        """Indexes of the words that are one of `forms` (a set intersection, done in C)."""
        common = self.positions.keys() & forms
        if not common:
            return []
        return [i for form in common for i in self.positions[form]]

    def spans(self, first: int, length: int) -> list[Span]:
        starts, ends = self._offsets()
        return [Span(starts[i], ends[i]) for i in range(first, first + length)]


# --- compiled nodes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _Words:
    """A term or phrase: any of several word sequences, each word a set of accepted forms."""

    sequences: tuple[Sequence, ...]

    def starts(self, view: PostView) -> list[tuple[int, int]]:
        """(first word index, length) of every occurrence; memoised per post."""
        cached: list[tuple[int, int]] | None = view.memo.get(self)
        if cached is not None:
            return cached
        found: list[tuple[int, int]] = []
        norms = view.norms
        for sequence in self.sequences:
            length = len(sequence)
            for first in view.occurrences(sequence[0]):
                if length == 1 or (
                    first + length <= len(norms)
                    and all(
                        norms[first + k] in sequence[k] or view.has(first + k, sequence[k])
                        for k in range(1, length)
                    )
                ):
                    found.append((first, length))
        view.memo[self] = found
        return found

    def test(self, view: PostView) -> bool:
        """Whether the term occurs (cheaper than its spans: no offsets are needed)."""
        if view.present is not None:
            return self in view.present
        return bool(self.starts(view))

    def evaluate(self, view: PostView) -> list[Span] | None:
        if _absent(self, view):
            return None
        key = (self, "spans")
        if key not in view.memo:
            found = [s for first, length in self.starts(view) for s in view.spans(first, length)]
            view.memo[key] = found or None
        result: list[Span] | None = view.memo[key]
        return result


def _absent(atom: object, view: PostView) -> bool:
    """Whether the index has already found, checking every atom of the post, that this one is
    not there (so neither a test nor spans need looking at the words)."""
    return view.present is not None and atom not in view.present


@dataclass(frozen=True, slots=True, eq=False)
class _Prefix:
    prefix: str

    def test(self, view: PostView) -> bool:
        if view.present is not None:
            return self in view.present
        return any(norm.startswith(self.prefix) for norm in view.positions)

    def evaluate(self, view: PostView) -> list[Span] | None:
        if _absent(self, view):
            return None
        if self not in view.memo:
            found = [
                span
                for i, norm in enumerate(view.norms)
                if norm.startswith(self.prefix)
                for span in view.spans(i, 1)
            ]
            view.memo[self] = found or None
        result: list[Span] | None = view.memo[self]
        return result


@dataclass(frozen=True, slots=True, eq=False)
class _Regex:
    pattern: str
    compiled: re2._Regexp

    def test(self, view: PostView) -> bool:
        if view.present is not None:
            return self in view.present
        return self.evaluate(view) is not None

    def evaluate(self, view: PostView) -> list[Span] | None:
        if _absent(self, view):
            return None
        if self in view.memo:
            cached: list[Span] | None = view.memo[self]
            return cached
        # A plain search first: RE2 answers "no match" on its DFA, which is far cheaper than
        # finditer's scan for the spans of a regex that is not there (most posts).
        if self.compiled.search(view.masked) is None:
            view.memo[self] = None
            return None
        found = [Span(*m.span()) for m in islice(self.compiled.finditer(view.masked), 50)]
        result = [s for s in found if s.end > s.start] or ([] if found else None)
        view.memo[self] = result
        return result


@dataclass(frozen=True, slots=True, eq=False)
class _All:
    children: tuple[_Compiled, ...]

    def test(self, view: PostView) -> bool:
        return all(child.test(view) for child in self.children)

    def evaluate(self, view: PostView) -> list[Span] | None:
        spans: list[Span] = []
        for child in self.children:
            result = child.evaluate(view)
            if result is None:
                return None
            spans.extend(result)
        return spans


@dataclass(frozen=True, slots=True, eq=False)
class _Any:
    children: tuple[_Compiled, ...]

    def test(self, view: PostView) -> bool:
        return any(child.test(view) for child in self.children)

    def evaluate(self, view: PostView) -> list[Span] | None:
        spans: list[Span] = []
        matched = False
        for child in self.children:
            result = child.evaluate(view)
            if result is not None:
                matched = True
                spans.extend(result)
        return spans if matched else None


@dataclass(frozen=True, slots=True, eq=False)
class _Not:
    child: _Compiled

    def test(self, view: PostView) -> bool:
        return not self.child.test(view)

    def evaluate(self, view: PostView) -> list[Span] | None:
        return None if self.child.test(view) else []


_Compiled = _Words | _Prefix | _Regex | _All | _Any | _Not


class _Compiler:
    """Turns query trees into compiled nodes, sharing the nodes of identical terms."""

    def __init__(self, expander: FormExpander) -> None:
        self._expander = expander
        self._terms: dict[tuple[str, bool, bool], _Compiled] = {}
        self._regexes: dict[str, _Regex] = {}
        self._prefixes: dict[str, _Prefix] = {}
        self._by_sequences: dict[frozenset[Sequence], _Words] = {}

    def _words(self, sequences: tuple[Sequence, ...]) -> _Words:
        """One node per set of sequences: `Oreshnik` and `Орешник` become the same atom.
        Its form sets are the expander's interned ones (`FormExpander.share`), held once
        however many terms use them."""
        shared = tuple(tuple(map(self._expander.share, sequence)) for sequence in sequences)
        key = frozenset(shared)
        found = self._by_sequences.get(key)
        if found is None:
            found = self._by_sequences[key] = _Words(shared)
        return found

    def prefix(self, prefix: str) -> _Prefix:
        """One node per prefix, so that identical prefixes are one atom."""
        return self._prefixes.setdefault(prefix, _Prefix(prefix))

    def compile(self, node: Node) -> _Compiled:
        if isinstance(node, Term):
            key = (node.text, node.exact, node.prefix)
            if key not in self._terms:
                if node.prefix:
                    self._terms[key] = self.prefix(prefix_form(node.text))
                elif node.exact:
                    self._terms[key] = self._words((exact_sequence(node.text),))
                else:
                    variants = self._expander.word_sequences(node.text)
                    self._terms[key] = self._words(tuple(variants))
            return self._terms[key]
        if isinstance(node, Phrase):
            key = (" ".join(node.words), False, False)
            if key not in self._terms:
                sequences = self._expander.phrase_sequences(list(node.words), MAX_PHRASE_VARIANTS)
                # A phrase may itself be a name with aliases (`"New START"` = `ДСНВ`).
                sequences.update(self._expander.phrase_aliases(key[0]))
                self._terms[key] = self._words(tuple(sequences))
            return self._terms[key]
        if isinstance(node, Regex):
            if node.pattern not in self._regexes:
                self._regexes[node.pattern] = _Regex(node.pattern, node.compiled)
            return self._regexes[node.pattern]
        if isinstance(node, Not):
            return _Not(self.compile(node.child))
        children = tuple(self.compile(child) for child in node.children)
        return _All(children) if isinstance(node, AllOf) else _Any(children)


MAX_CLAUSES = 64

_Atom = _Words | _Prefix | _Regex
_Clause = tuple[frozenset[_Atom], frozenset[_Atom]]  # (must occur, must not occur)


def _clauses(node: _Compiled, negate: bool = False) -> list[_Clause] | None:
    """The query as OR of ANDs over atoms (negations pushed to the atoms), or None if huge."""
    if isinstance(node, _Words | _Prefix | _Regex):
        return [(frozenset(), frozenset({node}))] if negate else [(frozenset({node}), frozenset())]
    if isinstance(node, _Not):
        return _clauses(node.child, not negate)
    parts = [_clauses(child, negate) for child in node.children]
    if any(part is None for part in parts):
        return None
    # Under negation AND and OR swap places (De Morgan).
    conjunction = isinstance(node, _All) != negate
    if not conjunction:
        union = [clause for part in parts if part for clause in part]
        return union if len(union) <= MAX_CLAUSES else None
    combined: list[_Clause] = [(frozenset(), frozenset())]
    for part in parts:
        assert part is not None
        combined = [(p1 | p2, n1 | n2) for p1, n1 in combined for p2, n2 in part]
        if len(combined) > MAX_CLAUSES:
            return None
    # A clause that needs and forbids the same atom can never match.
    return [(pos, neg) for pos, neg in combined if pos.isdisjoint(neg)]


def _regex_set(atoms: list[_Regex]) -> tuple[re2.Set, list[_Regex]] | None:
    """All regex atoms in one RE2 set (one pass per post), or None if RE2 cannot build it."""
    try:
        regex_set = re2.Set.SearchSet(re2_options(max_mem=64 << 20))
        for atom in atoms:
            regex_set.Add(atom.pattern)
        regex_set.Compile()
    except re2.error:
        log.warning(
            "the %d regex subscriptions do not fit one RE2 set; searching each", len(atoms)
        )
        return None
    return regex_set, atoms


def _caps_pairs(view: PostView) -> list[tuple[str, str]]:
    """Word pairs with a word written in capitals under its CAPS-marked form."""
    pairs: list[tuple[str, str]] = []
    norms, caps = view.norms, view.caps
    for index in caps:
        marked = CAPS + norms[index]
        if index + 1 < len(norms):
            following = norms[index + 1]
            pairs.append((marked, following))
            if index + 1 in caps:
                pairs.append((marked, CAPS + following))
        if index > 0:
            pairs.append((norms[index - 1], marked))
    return pairs


def _common(table: dict[Any, set[str]], present: set[Any]) -> list[Any]:
    """Keys of `table` that are in `present`, walking whichever of the two is smaller."""
    if len(table) < len(present):
        return [key for key in table if key in present]
    return [key for key in present if key in table]


# A bucket of the form and bigram tables: most hold one atom, kept as the atom itself (a
# 1-tuple took 56 bytes more, a set 216: at 10,000 subscriptions these tables hold ~140,000
# buckets, at 100,000 over a million); two or more atoms, a set.
_Bucket = _Words | set[_Words]


def _file_in(table: dict[Any, _Bucket], key: object, item: _Words, add: bool) -> None:
    """`_toggle` for the form and bigram tables, a one-atom bucket kept as the atom itself."""
    bucket = table.get(key)
    if add:
        if bucket is None:
            table[key] = item
        elif isinstance(bucket, _Words):
            if bucket is not item:
                table[key] = {bucket, item}
        else:
            bucket.add(item)
        return
    if bucket is None:
        return
    if isinstance(bucket, _Words):
        if bucket is item:
            del table[key]
        return
    bucket.discard(item)
    if len(bucket) == 1:
        table[key] = next(iter(bucket))
    elif not bucket:
        del table[key]


def _toggle(table: dict[Any, set[Any]], key: object, item: object, add: bool) -> None:
    """Add an item to a bucket, or take it out (dropping the bucket when empty)."""
    if add:
        table.setdefault(key, set()).add(item)
        return
    bucket = table.get(key)
    if bucket is not None:
        bucket.discard(item)
        if not bucket:
            del table[key]


def _nested(table: dict[_Atom, dict[Any, set[str]]], atom: _Atom) -> dict[Any, set[str]]:
    return table.setdefault(atom, {})


def _prune(table: dict[_Atom, dict[Any, set[str]]], atom: _Atom) -> None:
    if not table.get(atom, True):
        del table[atom]


def _leaves(node: _Compiled) -> set[_Atom]:
    if isinstance(node, _Words | _Prefix | _Regex):
        return {node}
    if isinstance(node, _Not):
        return _leaves(node.child)
    return set().union(*(_leaves(child) for child in node.children))


def _rarity(atom: _Atom) -> tuple[int, int]:
    """Which atom of a clause to file it under: lower sorts first (rarer-looking)."""
    if isinstance(atom, _Words):
        multiword = any(len(sequence) > 1 for sequence in atom.sequences)
        shortest = min(len(form) for sequence in atom.sequences for form in sequence[0])
        return (0 if multiword else 1, -shortest)
    return (2, 0) if isinstance(atom, _Prefix) else (3, 0)


@dataclass(slots=True)
class _Entry:
    text: str
    root: _Compiled
    clauses: list[_Clause] | None  # None: too many; the tree is evaluated instead
    subscriptions: dict[int, Subscription]


class QueryHit:
    """A distinct query that matched a post; the spans to bold are worked out when asked for."""

    __slots__ = ("_entry", "_view")

    def __init__(self, entry: _Entry, view: PostView) -> None:
        self._entry = entry
        self._view = view

    @property
    def query(self) -> str:
        return self._entry.text

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._entry.subscriptions.values())

    @property
    def spans(self) -> tuple[Span, ...]:
        return tuple(_ordered(self._entry.root.evaluate(self._view) or []))


class MatchSet:
    """What one post matched: distinct query texts; hits are built only when asked for."""

    __slots__ = ("_entries", "queries", "view")

    def __init__(self, view: PostView, queries: set[str], entries: dict[str, _Entry]) -> None:
        self.view = view
        self.queries = queries
        self._entries = entries

    def __len__(self) -> int:
        return len(self.queries)

    def hits(self) -> list[QueryHit]:
        return [QueryHit(self._entries[query], self.view) for query in self.queries]

    def subscription_count(self) -> int:
        return sum(len(self._entries[query].subscriptions) for query in self.queries)


class QueryIndex:
    """All subscriptions' queries, compiled to clauses over atoms and filed by atom.

    An atom is a term (a word in all its forms, a phrase, a prefix or a regex). For a post,
    the atoms present are found from its words (a dictionary look-up per distinct word), then
    checked where needed (phrase adjacency, prefixes, one RE2 set for all regexes). A clause
    with one atom and no exclusions — most queries: a word, an OR of words, a phrase — is
    matched by a set union; any other clause is filed under its rarest-looking atom and checked
    with set operations only when that atom is present.
    """

    def __init__(
        self,
        subscriptions: Iterable[Subscription] = (),
        *,
        expander: FormExpander | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        self._expander = expander or FormExpander.shared()
        self._compiler = _Compiler(self._expander)
        self._tokenizer = tokenizer or Tokenizer()
        self._entries: dict[str, _Entry] = {}
        self._query_of: dict[int, str] = {}
        # Atoms in use (with how many clauses use them), and how to find them in a post.
        self._atom_uses: dict[_Atom, int] = defaultdict(int)
        self._atoms_by_form: dict[str, _Bucket] = {}
        # Phrases and compounds by their first two words, so a common first word
        # (`бригада 14`) does not make them worth checking in every post.
        self._atoms_by_bigram: dict[tuple[str, str], _Bucket] = {}
        self._long_sequences: set[_Words] = set()
        self._prefix_heads: dict[str, set[_Prefix]] = {}
        self._regex_atoms: dict[str, _Regex] = {}
        self._regex_set: tuple[re2.Set, list[_Regex]] | None = None
        self._regex_dirty = False
        # Clauses by atom: single-atom clauses as query sets, the rest as checks.
        self._single: dict[_Atom, set[str]] = {}
        self._pairs: dict[_Atom, dict[_Atom, set[str]]] = {}  # `a b`: under a, by b
        self._excluding: dict[_Atom, set[str]] = {}  # `a -b`: all under a ...
        self._excluded_by: dict[_Atom, dict[_Atom, set[str]]] = {}  # ... less those with b
        self._checks: dict[_Atom, dict[_Clause, set[str]]] = {}
        # Queries whose clause form would be too large: evaluated as trees, by atom.
        self._trees: dict[_Atom, set[str]] = {}
        for subscription in subscriptions:
            self.add(subscription)

    def __len__(self) -> int:
        return len(self._query_of)

    @property
    def expander(self) -> FormExpander:
        return self._expander

    # --- atoms ------------------------------------------------------------------------

    def _use_atom(self, atom: _Atom, delta: int) -> None:
        uses = self._atom_uses[atom] + delta
        if uses > 0:
            if self._atom_uses[atom] == 0:
                self._file_atom(atom, add=True)
            self._atom_uses[atom] = uses
            return
        del self._atom_uses[atom]
        self._file_atom(atom, add=False)

    def _file_atom(self, atom: _Atom, *, add: bool) -> None:
        if isinstance(atom, _Words):
            for sequence in atom.sequences:
                if len(sequence) == 1:
                    for form in sequence[0]:
                        _file_in(self._atoms_by_form, form, atom, add)
                else:
                    for bigram in product(sequence[0], sequence[1]):
                        _file_in(self._atoms_by_bigram, bigram, atom, add)
            if any(len(sequence) > 2 for sequence in atom.sequences):
                (self._long_sequences.add if add else self._long_sequences.discard)(atom)
        elif isinstance(atom, _Prefix):
            _toggle(self._prefix_heads, atom.prefix[:MIN_PREFIX_CHARS], atom, add)
        else:
            if add:
                self._regex_atoms[atom.pattern] = atom
            else:
                self._regex_atoms.pop(atom.pattern, None)
            self._regex_dirty = True

    # --- adding and removing ------------------------------------------------------------

    def add(self, subscription: Subscription) -> None:
        """Index a subscription (QueryError if its query does not parse)."""
        query = parse_query(subscription.query)  # first: a bad query must not drop the old one
        if subscription.id in self._query_of:
            self.remove(subscription.id)
        entry = self._entries.get(query.text)
        if entry is None:
            root = self._compiler.compile(query.root)
            entry = _Entry(query.text, root, _clauses(root), {})
            self._entries[query.text] = entry
            self._file_entry(entry, add=True)
        entry.subscriptions[subscription.id] = subscription
        self._query_of[subscription.id] = query.text

    def ids_of_chat(self, chat_id: int) -> list[int]:
        """The ids of a chat's indexed subscriptions (a walk over all: for rare changes)."""
        return [
            subscription_id
            for subscription_id, text in self._query_of.items()
            if self._entries[text].subscriptions[subscription_id].chat_id == chat_id
        ]

    def remove(self, subscription_id: int) -> None:
        text = self._query_of.pop(subscription_id, None)
        if text is None:
            return
        entry = self._entries[text]
        del entry.subscriptions[subscription_id]
        if not entry.subscriptions:
            del self._entries[text]
            self._file_entry(entry, add=False)

    def _file_entry(self, entry: _Entry, *, add: bool) -> None:
        delta = 1 if add else -1
        if entry.clauses is None:
            # A query that cannot match without one of its atoms (parse_query refuses the
            # others) is worth evaluating only when one of them is present.
            for atom in _leaves(entry.root):
                self._use_atom(atom, delta)
                _toggle(self._trees, atom, entry.text, add)
            return
        text = entry.text
        for clause in entry.clauses:
            positives, negatives = clause
            assert positives, "every clause needs something to look for"
            for atom in positives | negatives:
                self._use_atom(atom, delta)
            anchor = min(positives, key=_rarity)
            if len(positives) == 1 and not negatives:
                _toggle(self._single, anchor, text, add)
            elif len(positives) == 2 and not negatives:
                (other,) = positives - {anchor}
                _toggle(_nested(self._pairs, anchor), other, text, add)
                _prune(self._pairs, anchor)
            elif len(positives) == 1 and len(entry.clauses) == 1:
                # Only for one-clause queries: subtracting the blocked ones is then exact.
                _toggle(self._excluding, anchor, text, add)
                for atom in negatives:
                    _toggle(_nested(self._excluded_by, anchor), atom, text, add)
                _prune(self._excluded_by, anchor)
            else:
                _toggle(_nested(self._checks, anchor), clause, text, add)
                _prune(self._checks, anchor)

    # --- matching -----------------------------------------------------------------------

    def _regex_present(self, text: str) -> list[_Regex]:
        if self._regex_dirty:
            self._regex_set = None
            self._regex_dirty = False
            if self._regex_atoms:
                self._regex_set = _regex_set(list(self._regex_atoms.values()))
        if self._regex_set is None:
            # No set could be built (too big for RE2's memory budget): one search per regex.
            return [atom for atom in self._regex_atoms.values() if atom.compiled.search(text)]
        regex_set, atoms = self._regex_set
        # Set.Match answers None, not an empty list, when no pattern matches.
        return [atoms[number] for number in regex_set.Match(text) or ()]

    def present_atoms(self, view: PostView) -> set[Any]:
        """The atoms that occur in the post (phrases checked for adjacency)."""
        present: set[Any] = set()
        atoms_by_form = self._atoms_by_form
        for norm in view.positions:
            atoms = atoms_by_form.get(norm)
            if atoms is not None:
                if isinstance(atoms, _Words):
                    present.add(atoms)
                else:
                    present.update(atoms)
        if self._atoms_by_bigram:
            by_bigram = self._atoms_by_bigram
            norms = view.norms
            found: set[_Words] = set()
            for pair in chain(pairwise(norms), _caps_pairs(view)):
                atoms = by_bigram.get(pair)
                if atoms is not None:
                    if isinstance(atoms, _Words):
                        found.add(atoms)
                    else:
                        found.update(atoms)
            # Two words in a row settle a two-word sequence; longer ones are checked whole.
            for atom in found - present:
                if atom not in self._long_sequences or atom.starts(view):
                    present.add(atom)
        view.present = present
        if self._prefix_heads:
            # Prefix atoms are filed by their first letters; only those are compared.
            heads = self._prefix_heads
            for norm in view.positions:
                candidates = heads.get(norm[:MIN_PREFIX_CHARS])
                if candidates:
                    present.update(a for a in candidates if norm.startswith(a.prefix))
        if self._regex_atoms:
            # Searched in the text as it is (one pass of the set), then, for the few found,
            # confirmed outside URLs and @mentions.
            regexes = self._regex_present(view.text)
            if regexes:
                present.update(a for a in regexes if a.compiled.search(view.masked))
        return present

    def view(self, text: str) -> PostView:
        return PostView(text, self._tokenizer)

    def match_set(self, text: str) -> MatchSet:
        """The distinct queries a text matches — the matching work, and nothing more."""
        view = self.view(text)
        present = self.present_atoms(view)
        matched: set[str] = set()
        single, pairs, checks = self._single, self._pairs, self._checks
        excluding, excluded_by = self._excluding, self._excluded_by
        for atom in present:
            queries = single.get(atom)
            if queries:
                matched |= queries
            partners = pairs.get(atom)
            if partners:
                for other in _common(partners, present):
                    matched |= partners[other]
            queries = excluding.get(atom)
            if queries:
                blockers = excluded_by.get(atom, {})
                blocked = [blockers[other] for other in _common(blockers, present)]
                matched |= queries.difference(*blocked) if blocked else queries
            clauses = checks.get(atom)
            if clauses:
                for (positives, negatives), texts in clauses.items():
                    if positives <= present and negatives.isdisjoint(present):
                        matched |= texts
        if self._trees:
            candidates = set().union(*(self._trees.get(atom, ()) for atom in present))
            for query in candidates - matched:
                if self._entries[query].root.test(view):
                    matched.add(query)
        return MatchSet(view, matched, self._entries)

    def spans_of(self, query: str, view: PostView) -> list[Span] | None:
        """The words of an indexed query (its text as saved) in a post read with `view`:
        [] when it does not match, None when no subscription has that query now."""
        entry = self._entries.get(query)
        if entry is None:
            return None
        return _ordered(entry.root.evaluate(view) or [])

    def candidates(self, view: PostView) -> set[str]:
        """Queries filed under an atom present in the post (for tests and diagnostics)."""
        present = self.present_atoms(view)
        found: set[str] = set()
        for atom in present:
            found |= self._single.get(atom, set())
            found |= self._excluding.get(atom, set())
            for table in (self._pairs, self._checks):
                for texts in table.get(atom, {}).values():
                    found |= texts
        return found

    def match_queries(self, text: str) -> list[QueryHit]:
        """Every distinct query the text matches; each names its subscriptions."""
        return self.match_set(text).hits()

    def match(self, text: str) -> list[Hit]:
        """Every subscription the text matches, with the spans of the matched words."""
        hits: list[Hit] = []
        for query_hit in self.match_queries(text):
            spans = query_hit.spans  # once per distinct query, shared by its subscribers
            hits.extend(Hit(subscription, spans) for subscription in query_hit.subscriptions)
        hits.sort(key=lambda hit: hit.subscription.id)
        return hits


def term_sequences(
    node: Term | Phrase, expander: FormExpander | None = None
) -> tuple[Sequence, ...]:
    """The word sequences a term or phrase matches, expanded exactly as the matcher expands
    it (every form, spelling and alias), for filters built outside the matcher (the /search
    full-text candidates). A `word*` term has no sequences: see `prefix_form`."""
    compiled = _Compiler(expander or FormExpander.shared()).compile(node)
    if not isinstance(compiled, _Words):
        raise ValueError(f"{node!r} is a prefix, not words")
    return compiled.sequences


class QueryMatcher:
    """One query against many texts (for `dozor match` and `/search`)."""

    def __init__(self, query: str, expander: FormExpander | None = None) -> None:
        parsed = parse_query(query)
        self._root = _Compiler(expander or FormExpander.shared()).compile(parsed.root)
        self._tokenizer = Tokenizer()

    def spans(self, text: str) -> list[Span] | None:
        """Spans of the matched words, or None when the text does not match."""
        result = self._root.evaluate(PostView(text, self._tokenizer))
        return None if result is None else _ordered(result)

    def spans_in(self, view: PostView) -> list[Span] | None:
        """`spans` on a text already read into words (one `PostView` for many queries)."""
        result = self._root.evaluate(view)
        return None if result is None else _ordered(result)

    def matches(self, text: str) -> bool:
        """Whether the text matches (cheaper than `spans`: no offsets are worked out)."""
        return self._root.test(PostView(text, self._tokenizer))


def _ordered(spans: list[Span]) -> list[Span]:
    """Spans once each, in text order (terms of one query may find the same word)."""
    return sorted(set(spans), key=lambda s: (s.start, s.end))
