"""PostgreSQL: /search's candidate filter (a part of `PostgresStorage`).

`bot.matching.candidates` writes a query's candidate filter as an FTS5 expression — quoted
strings, `*` after a prefix, AND, OR and parentheses, nothing else. Here it becomes a
tsquery over the `posts_search` index (migration 0003, which cuts words as FTS5 does). Each
quoted string is cut into words by the same function that feeds the index
(`dozor_search_vector`, asked of the server in one round trip), so a string and a post's
text are cut alike; a string of
several words asks for all of them (a superset of FTS5's phrase), a prefix string makes each
of its words a prefix. The filter may admit a post too many, never miss one: the matcher
confirms every candidate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain import StoredPost
from bot.storage.postgres.engine import PostgresBase, stored_post

_TOKEN = re.compile(r'\s*(?:(\()|(\))|(AND)\b|(OR)\b|"((?:[^"]|"")*)"(\*)?)')


class FilterSyntaxError(ValueError):
    """The expression is not one `bot.matching.candidates` writes."""


@dataclass(frozen=True, slots=True)
class _String:
    text: str
    prefix: bool


Node = _String | tuple[str, list["Node"]]  # a string, or ("&" | "|", children)


def parse_filter(expression: str) -> Node:
    """The expression as a tree; AND binds tighter than OR, as in FTS5."""
    tokens = _tokens(expression)
    node, rest = _or(tokens)
    if rest:
        raise FilterSyntaxError(f"unexpected {rest[0]!r} in the filter")
    return node


def strings_of(node: Node) -> set[str]:
    if isinstance(node, _String):
        return {node.text}
    return {text for child in node[1] for text in strings_of(child)}


def to_tsquery(node: Node, words: Mapping[str, Sequence[str]]) -> str | None:
    """The tsquery text for `node`, given each string's words as the index cuts them; None
    when it admits nothing (a string with no word in it matches nothing, as in FTS5)."""
    if isinstance(node, _String):
        lexemes = words.get(node.text) or ()
        if not lexemes:
            return None
        parts = [_lexeme(word) + (":*" if node.prefix else "") for word in lexemes]
        return parts[0] if len(parts) == 1 else "(" + " & ".join(parts) + ")"
    operator, children = node
    texts = [to_tsquery(child, words) for child in children]
    if operator == "&":
        if any(text is None for text in texts):
            return None
        kept = [text for text in texts if text is not None]
    else:
        kept = [text for text in texts if text is not None]
        if not kept:
            return None
    return kept[0] if len(kept) == 1 else "(" + f" {operator} ".join(kept) + ")"


def _lexeme(word: str) -> str:
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def _tokens(expression: str) -> list[object]:
    tokens: list[object] = []
    position = 0
    while position < len(expression.rstrip()):
        found = _TOKEN.match(expression, position)
        if found is None:
            raise FilterSyntaxError(f"cannot read the filter at {expression[position:][:20]!r}")
        opening, closing, conjunction, disjunction, text, star = found.groups()
        if opening:
            tokens.append("(")
        elif closing:
            tokens.append(")")
        elif conjunction:
            tokens.append("&")
        elif disjunction:
            tokens.append("|")
        else:
            tokens.append(_String(text.replace('""', '"'), prefix=bool(star)))
        position = found.end()
    return tokens


def _or(tokens: list[object]) -> tuple[Node, list[object]]:
    node, rest = _and(tokens)
    children = [node]
    while rest and rest[0] == "|":
        node, rest = _and(rest[1:])
        children.append(node)
    return (children[0] if len(children) == 1 else ("|", children)), rest


def _and(tokens: list[object]) -> tuple[Node, list[object]]:
    node, rest = _operand(tokens)
    children = [node]
    while rest and rest[0] == "&":
        node, rest = _operand(rest[1:])
        children.append(node)
    return (children[0] if len(children) == 1 else ("&", children)), rest


def _operand(tokens: list[object]) -> tuple[Node, list[object]]:
    if not tokens:
        raise FilterSyntaxError("the filter ends too early")
    first, rest = tokens[0], tokens[1:]
    if isinstance(first, _String):
        return first, rest
    if first == "(":
        node, rest = _or(rest)
        if not rest or rest[0] != ")":
            raise FilterSyntaxError("a parenthesis is not closed")
        return node, rest[1:]
    raise FilterSyntaxError(f"unexpected {first!r} in the filter")


class CandidateSearch(PostgresBase):
    """`count_candidates` and `candidate_posts` on the `posts_search` index."""

    async def _tsquery(self, fts: str) -> str | None:
        tree = parse_filter(fts)
        strings = sorted(strings_of(tree))
        rows = await self._all(
            "SELECT string, tsvector_to_array(dozor_search_vector(string)) AS words"
            " FROM unnest(%s::text[]) AS string",
            (strings,),
        )
        return to_tsquery(tree, {row["string"]: row["words"] for row in rows})

    async def count_candidates(self, fts: str) -> int:
        """How many posts the filter `fts` admits (built by `matching.candidates`, which
        quotes every term: never user text)."""
        query = await self._tsquery(fts)
        if query is None:
            return 0
        row = await self._one(
            "SELECT COUNT(*) AS n FROM posts WHERE dozor_search_vector(text) @@ %s::tsquery",
            (query,),
        )
        return 0 if row is None else int(row["n"])

    async def candidate_posts(
        self,
        fts: str | None,
        limit: int,
        *,
        before: tuple[datetime, int] | None = None,
        since: datetime | None = None,
        dense: bool = False,
    ) -> list[StoredPost]:
        """Posts the filter `fts` admits (every post when None), newest first by (date, id),
        older than the key `before`, not older than `since` — keyset paging, so posts stored
        meanwhile move nothing. (`dense` steers SQLite's plan; PostgreSQL's planner weighs
        the index and the date order itself.)"""
        where: list[str] = []
        params: list[Any] = []
        if fts is not None:
            query = await self._tsquery(fts)
            if query is None:
                return []
            where.append("dozor_search_vector(text) @@ %s::tsquery")
            params.append(query)
        if before is not None:
            where.append("(date, id) < (%s, %s)")
            params += [before[0], before[1]]
        if since is not None:
            where.append("date >= %s")
            params.append(since)
        rows = await self._all(
            f"SELECT * FROM posts WHERE {' AND '.join(where) or 'true'}"
            " ORDER BY date DESC, id DESC LIMIT %s",
            (*params, limit),
        )
        return [stored_post(row) for row in rows]
