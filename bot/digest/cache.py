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
MEMO_LIMIT = 300_000  # texts, dates and excerpts a job keeps before starting afresh
MATCHER_LIMIT = 1_000  # queries compiled by a job itself (those the service's index lacks)
FLAT_CHARS = 3_000  # characters of a post flattened once for all its excerpts
POSTS_READ = 2_000  # posts read into words a job keeps (a few kilobytes each)


class CompiledQueries(Protocol):
    """Where the digest finds a query's matched words: the service's matcher."""

    def spans_of(self, query: str, view: PostView) -> list[Span] | None: ...


class DigestCache:
    """What one digest job computes once and uses for many chats: each query compiled, each
    post read into words and flattened, the excerpt of a post for a query, dates as a
    language and zone write them, texts, and each post's near-duplicate fingerprint."""

    def __init__(
        self, index: CompiledQueries | None = None, fingerprints: Fingerprints | None = None
    ) -> None:
        """`index`: the service's compiled queries (its matcher), used where it has the
        query; others are compiled here, a bounded number kept."""
        self.fingerprints = fingerprints or Fingerprints()
        self._index = index
        self._matchers: dict[str, QueryMatcher | None] = {}
        # Each post read into words and flattened, the oldest out first (an OrderedDict:
        # deleting a plain dict's first key again and again makes finding the next one
        # slower and slower).
        self._posts: OrderedDict[int, tuple[PostView, FlatText]] = OrderedDict()
        # Keyed by strings, holding strings: the garbage collector never walks this dict
        # (tuple keys would make it, on every full pass, through every entry).
        self._memo: dict[str, str] = {}
        self._tokenizer = Tokenizer()

    def memo(self, key: str, make: Callable[[], str]) -> str:
        """A text made once per job for `key`."""
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            found = self._memo[key] = make()
        return found

    def text(self, t: Texts, key: str, **args: str | int) -> str:
        """`t(key, **args)`, formatted once for the same language and arguments."""
        memo = "\x00".join(
            ["text", t.language, key, *(f"{k}={v}" for k, v in sorted(args.items()))]
        )
        return self.memo(memo, lambda: t(key, **args))

    def moment(self, t: Texts, moment: datetime, tz: tzinfo) -> str:
        """`28 Nov 14:05` in the language of `t`, on the clock of `tz`."""
        return self.memo(
            f"moment\x00{t.language}\x00{tz}\x00{moment.isoformat()}",
            lambda: t.date(moment.astimezone(tz), MOMENT_PATTERN),
        )

    def excerpt(self, post: StoredPost, query: str) -> str:
        """One line of the post with the words `query` matched in bold (HTML)."""
        return self.memo(f"excerpt\x00{post.id}\x00{query}", lambda: self._excerpt(post, query))

    def stores(self) -> list[MutableMapping[Any, Any]]:
        """Everything the cache holds (to be released a slice at a time)."""
        return [self._posts, self._memo, self._matchers, self.fingerprints.entries]

    def _excerpt(self, post: StoredPost, query: str) -> str:
        view, flat = self._read(post)
        spans = self._index.spans_of(query, view) if self._index else None
        if spans is None:  # a query no subscription has now: compiled here
            matcher = self._matcher(query)
            spans = (matcher.spans_in(view) if matcher else None) or []
        return excerpt(post.post.text, spans, EXCERPT_CHARS, flat)

    def _read(self, post: StoredPost) -> tuple[PostView, FlatText]:
        found = self._posts.get(post.id)
        if found is None:
            if len(self._posts) >= POSTS_READ:
                self._posts.popitem(last=False)
            text = post.post.text
            view = PostView(text, self._tokenizer)
            found = self._posts[post.id] = (view, flatten(text, 0, min(len(text), FLAT_CHARS)))
        return found

    def _matcher(self, query: str) -> QueryMatcher | None:
        if query not in self._matchers:
            if len(self._matchers) >= MATCHER_LIMIT:
                self._matchers.clear()
            try:
                self._matchers[query] = QueryMatcher(query)
            except QueryError:  # a query saved under older rules: shown, not bolded
                self._matchers[query] = None
        return self._matchers[query]
