"""The subscription index: finds which saved queries a post matches without trying them all.

Every phrase of every query is indexed by its first word. A post is tokenised once; only the
queries that share a word with it are evaluated, so cost follows the post, not the number of
subscriptions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from bot.domain import Span, Subscription
from bot.matching.query import AllOf, AnyOf, Node, Phrase, Query, parse_query
from bot.matching.text import Token, tokenize


@dataclass(frozen=True, slots=True)
class Hit:
    """A subscription that matched a post, and the words that made it match."""

    subscription: Subscription
    spans: tuple[Span, ...]


class _PostView:
    """A post's tokens arranged for fast phrase look-ups."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.positions: dict[str, list[int]] = defaultdict(list)
        for index, token in enumerate(tokens):
            self.positions[token.norm].append(index)

    def find(self, phrase: Phrase) -> list[Span]:
        """Spans of every occurrence of the phrase (empty if it does not occur)."""
        found: list[Span] = []
        words = phrase.words
        for first in self.positions.get(words[0], ()):
            last = first + len(words) - 1
            if last < len(self.tokens) and all(
                self.tokens[first + k].norm == word for k, word in enumerate(words)
            ):
                found.extend(Span(t.start, t.end) for t in self.tokens[first : last + 1])
        return found


def _evaluate(node: Node, view: _PostView) -> list[Span] | None:
    """Spans that satisfy the node, or None when it does not match."""
    if isinstance(node, Phrase):
        return view.find(node) or None
    results = [_evaluate(child, view) for child in node.children]
    if isinstance(node, AllOf):
        if any(result is None for result in results):
            return None
        return [span for result in results if result for span in result]
    assert isinstance(node, AnyOf)
    matched = [span for result in results if result for span in result]
    return matched if any(result is not None for result in results) else None


def _index_keys(node: Node) -> set[str]:
    """Words of which at least one must occur in any post the node matches.

    A phrase needs its first word; "either" needs a key of each alternative; "both" needs the
    keys of just one part — the one with the longest key, as longer words tend to be rarer,
    so common words in a query do not make it a candidate for every post.
    """
    if isinstance(node, Phrase):
        return {node.words[0]}
    if isinstance(node, AnyOf):
        return set().union(*(_index_keys(child) for child in node.children))
    options = [_index_keys(child) for child in node.children]
    return max(options, key=lambda keys: (min(len(k) for k in keys), -len(keys)))


class QueryIndex:
    """All subscriptions' queries, indexed by the words they need."""

    def __init__(self, subscriptions: Iterable[Subscription] = ()) -> None:
        self._queries: dict[int, tuple[Subscription, Query]] = {}
        self._by_word: dict[str, set[int]] = defaultdict(set)
        for subscription in subscriptions:
            self.add(subscription)

    def __len__(self) -> int:
        return len(self._queries)

    def add(self, subscription: Subscription) -> None:
        """Index a subscription; a query that no longer parses is skipped."""
        query = parse_query(subscription.query)
        self._queries[subscription.id] = (subscription, query)
        for word in _index_keys(query.root):
            self._by_word[word].add(subscription.id)

    def match(self, text: str) -> list[Hit]:
        """Every subscription the text matches, with the spans of the matched words."""
        view = _PostView(tokenize(text))
        candidates: set[int] = set()
        for word in view.positions:
            candidates.update(self._by_word.get(word, ()))
        hits: list[Hit] = []
        for subscription_id in sorted(candidates):
            subscription, query = self._queries[subscription_id]
            spans = _evaluate(query.root, view)
            if spans is not None:
                hits.append(Hit(subscription, tuple(sorted(set(spans), key=lambda s: s.start))))
        return hits


def query_matches(query: str, text: str) -> bool:
    """Whether one query matches one text (for `/search`-style one-off checks and tests)."""
    return _evaluate(parse_query(query).root, _PostView(tokenize(text))) is not None
