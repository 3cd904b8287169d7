"""What one digest job works out once and uses for many chats: compiled queries, posts read
into words and flattened, excerpts, dates and texts, near-duplicate fingerprints.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from datetime import datetime, tzinfo
from typing import Any, Protocol

from bot.delivery.chats import MOMENT_PATTERN
from bot.delivery.render import FlatText, excerpt, flatten
from bot.domain import Span, StoredPost
from bot.folding import Fingerprints
from bot.i18n import Texts
from bot.matching import QueryError, QueryMatcher
from bot.matching.index import PostView
from bot.matching.text import Tokenizer

EXCERPT_CHARS = 180
MEMO_LIMIT = 100_000  # texts and excerpts a job keeps for reuse before starting afresh
MATCHER_LIMIT = 1_000  # queries compiled by a job itself (those the service's index lacks)
FLAT_CHARS = 3_000  # characters of a post flattened once for all its excerpts
VIEW_LIMIT = 2_000  # posts read into words a job keeps (a few kilobytes each)


class CompiledQueries(Protocol):
    """Where the digest finds a query's matched words: the service's matcher."""

    def spans_of(self, query: str, view: PostView) -> list[Span] | None: ...


class DigestCache:
    """What one digest job computes once and uses for many chats: each query compiled, each
    post read into words, the matched words and excerpt of a post for some queries, dates
    as a language and zone write them, and each post's near-duplicate fingerprint."""

    def __init__(
        self, index: CompiledQueries | None = None, fingerprints: Fingerprints | None = None
    ) -> None:
        """`index`: the service's compiled queries (its matcher), used where it has the
        query; others are compiled here, a bounded number kept."""
        self.fingerprints = fingerprints or Fingerprints()
        self._index = index
        self._matchers: dict[str, QueryMatcher | None] = {}
        # Oldest first out (an OrderedDict: deleting a plain dict's first key again and
        # again makes finding the next first key slower and slower).
        self._views: OrderedDict[int, PostView] = OrderedDict()
        self._flat: OrderedDict[int, FlatText] = OrderedDict()
        # Keyed by strings, holding strings: the garbage collector never walks these dicts
        # (tuple keys would make it, on every full pass, through every entry).
        self._excerpts: dict[str, str] = {}
        self._dates: dict[str, str] = {}
        self._texts: dict[str, str] = {}
        self._tokenizer = Tokenizer()

    def text(self, t: Texts, key: str, **args: str | int) -> str:
        """`t(key, **args)`, formatted once for the same language and arguments."""
        memo = "\x00".join([t.language, key, *(f"{k}={v}" for k, v in sorted(args.items()))])
        return self.memo(memo, lambda: t(key, **args))

    def memo(self, key: str, make: Callable[[], str]) -> str:
        """A text made once per job for `key`."""
        found = self._texts.get(key)
        if found is None:
            if len(self._texts) >= MEMO_LIMIT:
                self._texts.clear()
            found = self._texts[key] = make()
        return found

    def stores(self) -> list[MutableMapping[Any, Any]]:
        """Everything the cache holds (to be released a slice at a time)."""
        return [
            self._views,
            self._flat,
            self._excerpts,
            self._dates,
            self._texts,
            self._matchers,
            self.fingerprints.entries,
        ]

    def _matcher(self, query: str) -> QueryMatcher | None:
        if query not in self._matchers:
            if len(self._matchers) >= MATCHER_LIMIT:
                self._matchers.clear()
            try:
                self._matchers[query] = QueryMatcher(query)
            except QueryError:  # a query saved under older rules: shown, not bolded
                self._matchers[query] = None
        return self._matchers[query]

    def excerpt(self, post: StoredPost, query: str) -> str:
        """One line of the post with the words `query` matched in bold (HTML)."""
        key = f"{post.id}\x00{query}"
        found = self._excerpts.get(key)
        if found is None:
            text = post.post.text
            view = self._views.get(post.id)
            if view is None:
                if len(self._views) >= VIEW_LIMIT:
                    self._views.popitem(last=False)
                view = self._views[post.id] = PostView(text, self._tokenizer)
            spans = self._index.spans_of(query, view) if self._index else None
            if spans is None:  # a query no subscription has now: compiled here
                matcher = self._matcher(query)
                spans = (matcher.spans_in(view) if matcher else None) or []
            flat = self._flat.get(post.id)
            if flat is None:
                if len(self._flat) >= VIEW_LIMIT:
                    self._flat.popitem(last=False)
                flat = self._flat[post.id] = flatten(text, 0, min(len(text), FLAT_CHARS))
            if len(self._excerpts) >= MEMO_LIMIT:
                self._excerpts.clear()
            found = self._excerpts[key] = excerpt(text, spans, EXCERPT_CHARS, flat)
        return found

    def moment(self, t: Texts, moment: datetime, tz: tzinfo) -> str:
        """`28 Nov 14:05` in the language of `t`, on the clock of `tz`."""
        key = f"{t.language}\x00{tz}\x00{moment.isoformat()}"
        found = self._dates.get(key)
        if found is None:
            if len(self._dates) >= MEMO_LIMIT:
                self._dates.clear()
            found = self._dates[key] = t.date(moment.astimezone(tz), MOMENT_PATTERN)
        return found
