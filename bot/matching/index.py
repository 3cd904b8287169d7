"""The subscription index: which saved queries does a post match, without trying them all.

Each query is compiled once: every term is expanded into the forms it may take in a post
(`forms.py`), and the query is filed under the forms of the terms it cannot match without
(for `a b`, one of them; for `a OR b`, both). A post is tokenised and folded once; its tokens
are looked up in that file to find candidate queries, and only those are evaluated — so the
cost per post follows the post and the queries it matches, not the number of subscriptions.
Identical queries of different subscribers are compiled and evaluated once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice, product

import re2

from bot.domain import Span, Subscription
from bot.matching.forms import FormExpander, Sequence, exact_sequence
from bot.matching.query import (
    AllOf,
    Node,
    Not,
    Phrase,
    Regex,
    Term,
    compile_regex,
    parse_query,
)
from bot.matching.text import Tokenizer, fold

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

    __slots__ = ("_ends", "_starts", "_tokenizer", "memo", "norms", "positions", "present", "text")

    def __init__(self, text: str, tokenizer: Tokenizer) -> None:
        self.text = text
        self._tokenizer = tokenizer
        self.norms = norms = tokenizer.norms(text)
        positions: dict[str, list[int]] = {}
        for index, norm in enumerate(norms):
            found = positions.get(norm)
            if found is None:
                positions[norm] = [index]
            else:
                found.append(index)
        self.positions = positions
        self.memo: dict[object, list[Span] | None] = {}
        # Terms whose first word occurs in the post (None: unknown, evaluate everything).
        self.present: set[object] | None = None
        self._starts: list[int] | None = None
        self._ends: list[int] = []

    def _offsets(self) -> tuple[list[int], list[int]]:
        if self._starts is None:
            _, self._starts, self._ends = self._tokenizer.scan(self.text)
        return self._starts, self._ends

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
    single: bool = field(init=False)

    def __post_init__(self) -> None:
        # One-word sequences only: occurring in the post's words is the whole test.
        object.__setattr__(self, "single", all(len(seq) == 1 for seq in self.sequences))

    def test(self, view: PostView) -> bool:
        """Whether the term occurs (cheaper than its spans: no offsets are needed)."""
        present = view.present
        if present is not None:
            if self not in present:
                return False
            if self.single:
                return True
        return self.evaluate(view) is not None

    def evaluate(self, view: PostView) -> list[Span] | None:
        if view.present is not None and self not in view.present:
            return None
        cached = view.memo.get(self, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        found: list[Span] = []
        norms = view.norms
        for sequence in self.sequences:
            length = len(sequence)
            for first in view.occurrences(sequence[0]):
                if length == 1 or (
                    first + length <= len(norms)
                    and all(norms[first + k] in sequence[k] for k in range(1, length))
                ):
                    found.extend(view.spans(first, length))
        result = found or None
        view.memo[self] = result
        return result


@dataclass(frozen=True, slots=True, eq=False)
class _Prefix:
    prefix: str

    def test(self, view: PostView) -> bool:
        return any(norm.startswith(self.prefix) for norm in view.positions)

    def evaluate(self, view: PostView) -> list[Span] | None:
        found = [
            span
            for i, norm in enumerate(view.norms)
            if norm.startswith(self.prefix)
            for span in view.spans(i, 1)
        ]
        return found or None


@dataclass(frozen=True, slots=True, eq=False)
class _Regex:
    pattern: str
    compiled: re2._Regexp

    def test(self, view: PostView) -> bool:
        return self.evaluate(view) is not None

    def evaluate(self, view: PostView) -> list[Span] | None:
        cached = view.memo.get(self, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        found = [Span(*m.span()) for m in islice(self.compiled.finditer(view.text), 50)]
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


@dataclass(frozen=True, slots=True)
class _Keys:
    """What a post must contain for a query to be worth evaluating (any one of these)."""

    forms: frozenset[str] = frozenset()
    prefixes: frozenset[str] = frozenset()
    regexes: tuple[_Regex, ...] = ()

    def __or__(self, other: _Keys) -> _Keys:
        return _Keys(
            self.forms | other.forms, self.prefixes | other.prefixes, self.regexes + other.regexes
        )

    def cost(self) -> tuple[int, int, int]:
        """Lower is better: regexes run on every post, prefixes scan, short forms are common."""
        shortest = min((len(form) for form in self.forms), default=0)
        return (len(self.regexes), len(self.prefixes), -shortest)


def _keys(node: _Compiled) -> _Keys | None:
    if isinstance(node, _Words):
        return _Keys(forms=frozenset().union(*(seq[0] for seq in node.sequences)))
    if isinstance(node, _Prefix):
        return _Keys(prefixes=frozenset({node.prefix}))
    if isinstance(node, _Regex):
        return _Keys(regexes=(node,))
    if isinstance(node, _Not):
        return None
    options = [keys for child in node.children if (keys := _keys(child)) is not None]
    if isinstance(node, _Any):
        if len(options) < len(node.children):
            return None
        result = _Keys()
        for keys in options:
            result = result | keys
        return result
    return min(options, key=_Keys.cost) if options else None


class _Compiler:
    """Turns query trees into compiled nodes, sharing the nodes of identical terms."""

    def __init__(self, expander: FormExpander) -> None:
        self._expander = expander
        self._terms: dict[tuple[str, bool, bool], _Compiled] = {}
        self._regexes: dict[str, _Regex] = {}
        # Every word node by the forms its sequences start with: a post's words tell at once
        # which terms can occur in it, and every other term is skipped without a look.
        self.words_by_form: dict[str, list[_Words]] = defaultdict(list)

    def _words(self, sequences: tuple[Sequence, ...]) -> _Words:
        node = _Words(sequences)
        for form in frozenset().union(*(sequence[0] for sequence in sequences)):
            self.words_by_form[form].append(node)
        return node

    def _chunk(self, chunk: str) -> list[Sequence]:
        """Variants of one written word; its one-word variants merged into one form set."""
        variants = self._expander.expand(chunk)
        singles = [seq[0] for seq in variants if len(seq) == 1]
        merged: list[Sequence] = [(frozenset().union(*singles),)] if singles else []
        return merged + [seq for seq in variants if len(seq) > 1]

    def compile(self, node: Node) -> _Compiled:
        if isinstance(node, Term):
            key = (node.text, node.exact, node.prefix)
            if key not in self._terms:
                if node.prefix:
                    self._terms[key] = _Prefix(fold(node.text))
                elif node.exact:
                    self._terms[key] = self._words((exact_sequence(node.text),))
                else:
                    self._terms[key] = self._words(tuple(self._chunk(node.text)))
            return self._terms[key]
        if isinstance(node, Phrase):
            key = (" ".join(node.words), False, False)
            if key not in self._terms:
                choices = [self._chunk(word) for word in node.words]
                sequences = {
                    tuple(form for part in combo for form in part)
                    for combo in islice(product(*choices), MAX_PHRASE_VARIANTS)
                }
                # A phrase may itself be a name with aliases (`"New START"` = `ДСНВ`).
                sequences.update(self._expander.phrase_aliases(key[0]))
                self._terms[key] = self._words(tuple(sequences))
            return self._terms[key]
        if isinstance(node, Regex):
            if node.pattern not in self._regexes:
                self._regexes[node.pattern] = _Regex(node.pattern, compile_regex(node.pattern))
            return self._regexes[node.pattern]
        if isinstance(node, Not):
            return _Not(self.compile(node.child))
        children = tuple(self.compile(child) for child in node.children)
        return _All(children) if isinstance(node, AllOf) else _Any(children)


def _is_direct(node: _Compiled) -> bool:
    """Single words or an OR of them: finding one of their forms in a post is the match."""
    if isinstance(node, _Words):
        return all(len(sequence) == 1 for sequence in node.sequences)
    return isinstance(node, _Any) and all(_is_direct(child) for child in node.children)


@dataclass(slots=True)
class _Entry:
    text: str
    root: _Compiled
    keys: _Keys
    direct: bool
    subscriptions: dict[int, Subscription]


class QueryHit:
    """A distinct query that matched a post; the spans to bold are worked out when asked for."""

    __slots__ = ("_entry", "_spans", "_view")

    def __init__(self, entry: _Entry, view: PostView, spans: list[Span] | None = None) -> None:
        self._entry = entry
        self._view = view
        self._spans = spans

    @property
    def query(self) -> str:
        return self._entry.text

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._entry.subscriptions.values())

    @property
    def subscription_count(self) -> int:
        return len(self._entry.subscriptions)

    @property
    def spans(self) -> tuple[Span, ...]:
        if self._spans is None:
            self._spans = self._entry.root.evaluate(self._view) or []
        return tuple(sorted(set(self._spans), key=lambda s: (s.start, s.end)))


class QueryIndex:
    """All subscriptions' queries, compiled and filed under the words they need."""

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
        self._by_form: dict[str, set[str]] = defaultdict(set)
        self._direct_by_form: dict[str, set[str]] = defaultdict(set)
        self._by_prefix: dict[str, set[str]] = defaultdict(set)
        self._prefix_lengths: dict[int, int] = defaultdict(int)
        self._regex_queries: dict[str, set[str]] = defaultdict(set)
        self._regex_set: tuple[re2.Set, list[str]] | None = None
        self._regex_dirty = False
        for subscription in subscriptions:
            self.add(subscription)

    def __len__(self) -> int:
        return len(self._query_of)

    @property
    def expander(self) -> FormExpander:
        return self._expander

    def add(self, subscription: Subscription) -> None:
        """Index a subscription (QueryError if its query does not parse)."""
        if subscription.id in self._query_of:
            self.remove(subscription.id)
        query = parse_query(subscription.query)
        entry = self._entries.get(query.text)
        if entry is None:
            root = self._compiler.compile(query.root)
            keys = _keys(root)
            assert keys is not None, "parse_query rejects queries that only exclude"
            entry = _Entry(query.text, root, keys, _is_direct(root), {})
            self._entries[query.text] = entry
            by_form = self._direct_by_form if entry.direct else self._by_form
            for form in keys.forms:
                by_form[form].add(query.text)
            for prefix in keys.prefixes:
                self._by_prefix[prefix].add(query.text)
                self._prefix_lengths[len(prefix)] += 1
            for regex in keys.regexes:
                self._regex_queries[regex.pattern].add(query.text)
                self._regex_dirty = True
        entry.subscriptions[subscription.id] = subscription
        self._query_of[subscription.id] = query.text

    def remove(self, subscription_id: int) -> None:
        text = self._query_of.pop(subscription_id, None)
        if text is None:
            return
        entry = self._entries[text]
        del entry.subscriptions[subscription_id]
        if entry.subscriptions:
            return
        del self._entries[text]
        by_form = self._direct_by_form if entry.direct else self._by_form
        for form in entry.keys.forms:
            by_form[form].discard(text)
        for prefix in entry.keys.prefixes:
            self._by_prefix[prefix].discard(text)
            self._prefix_lengths[len(prefix)] -= 1
            if not self._prefix_lengths[len(prefix)]:
                del self._prefix_lengths[len(prefix)]
        for regex in entry.keys.regexes:
            self._regex_queries[regex.pattern].discard(text)
            if not self._regex_queries[regex.pattern]:
                del self._regex_queries[regex.pattern]
            self._regex_dirty = True

    def _regex_candidates(self, text: str) -> set[str]:
        if self._regex_dirty:
            self._regex_set = None
            if self._regex_queries:
                options = re2.Options()
                options.case_sensitive = False
                options.log_errors = False
                regex_set = re2.Set.SearchSet(options)
                patterns = list(self._regex_queries)
                for pattern in patterns:
                    regex_set.Add(pattern)
                regex_set.Compile()
                self._regex_set = (regex_set, patterns)
            self._regex_dirty = False
        if self._regex_set is None:
            return set()
        regex_set, patterns = self._regex_set
        found: set[str] = set()
        # Set.Match answers None, not an empty list, when no pattern matches.
        for number in regex_set.Match(text) or ():
            found |= self._regex_queries[patterns[number]]
        return found

    def candidates(self, view: PostView) -> set[str]:
        """Queries that share a key with the post: the only ones worth looking at."""
        direct, others = self._candidates(view)
        return direct | others

    def _candidates(self, view: PostView) -> tuple[set[str], set[str]]:
        """(queries the post matches by finding them, queries still to evaluate)."""
        direct: set[str] = set()
        others: set[str] = set()
        present: set[object] = set()
        direct_by_form = self._direct_by_form
        by_form = self._by_form
        words_by_form = self._compiler.words_by_form
        for norm in view.positions:
            queries = direct_by_form.get(norm)
            if queries:
                direct |= queries
            queries = by_form.get(norm)
            if queries:
                others |= queries
            words = words_by_form.get(norm)
            if words:
                present.update(words)
        view.present = present
        if self._prefix_lengths:
            by_prefix = self._by_prefix
            lengths = list(self._prefix_lengths)
            for norm in view.positions:
                for length in lengths:
                    if length <= len(norm):
                        queries = by_prefix.get(norm[:length])
                        if queries:
                            others |= queries
        if self._regex_queries:
            others |= self._regex_candidates(view.text)
        return direct, others

    def view(self, text: str) -> PostView:
        return PostView(text, self._tokenizer)

    def match_queries(self, text: str) -> list[QueryHit]:
        """Every distinct query the text matches; each names its subscriptions."""
        view = self.view(text)
        direct, others = self._candidates(view)
        entries = self._entries
        hits = [QueryHit(entries[query], view) for query in direct]
        for query in others - direct:
            entry = entries[query]
            if entry.root.test(view):
                hits.append(QueryHit(entry, view))
        return hits

    def match(self, text: str) -> list[Hit]:
        """Every subscription the text matches, with the spans of the matched words."""
        hits = [
            Hit(subscription, query_hit.spans)
            for query_hit in self.match_queries(text)
            for subscription in query_hit.subscriptions
        ]
        hits.sort(key=lambda hit: hit.subscription.id)
        return hits


class QueryMatcher:
    """One query against many texts (for `dozor match` and `/search`)."""

    def __init__(self, query: str, expander: FormExpander | None = None) -> None:
        parsed = parse_query(query)
        self._root = _Compiler(expander or FormExpander.shared()).compile(parsed.root)
        self._tokenizer = Tokenizer()

    def spans(self, text: str) -> list[Span] | None:
        """Spans of the matched words, or None when the text does not match."""
        result = self._root.evaluate(PostView(text, self._tokenizer))
        return None if result is None else sorted(set(result), key=lambda s: (s.start, s.end))


def query_matches(query: str, text: str, expander: FormExpander | None = None) -> bool:
    """Whether one query matches one text."""
    return QueryMatcher(query, expander).spans(text) is not None
