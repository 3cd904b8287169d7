"""The query language: parse a user's query into a small tree that the index can evaluate.

First version: words (whole-word, case-insensitive), "quoted phrases", `a b` (both) and
`a OR b` (either). Errors say what is wrong and where, so the bot can show them to the user.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.matching.text import tokenize

MAX_QUERY_CHARS = 500
MAX_QUERY_TERMS = 50
EXAMPLE = '/subscribe Oreshnik OR "Орешник" OR "INF Treaty"'


class QueryError(ValueError):
    """A malformed query; `position` is the character offset where the problem is."""

    def __init__(self, message: str, position: int | None = None) -> None:
        where = f" (at character {position + 1})" if position is not None else ""
        super().__init__(f"{message}{where}")
        self.position = position


@dataclass(frozen=True, slots=True)
class Phrase:
    """Normalised words that must occur adjacent and in this order (one word is a phrase of 1)."""

    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every child must match."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one child must match."""

    children: tuple[Node, ...]


Node = Phrase | AllOf | AnyOf


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: the text the user wrote and its tree."""

    text: str
    root: Node

    def phrases(self) -> list[Phrase]:
        """Every phrase in the tree, left to right."""
        found: list[Phrase] = []
        stack: list[Node] = [self.root]
        while stack:
            node = stack.pop()
            if isinstance(node, Phrase):
                found.append(node)
            else:
                stack.extend(reversed(node.children))
        return found


@dataclass(frozen=True, slots=True)
class _Lexeme:
    kind: str  # "word", "phrase" or "or"
    text: str
    position: int


def _lex(text: str) -> list[_Lexeme]:
    lexemes: list[_Lexeme] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char in '"«“„':
            closing = {"«": "»", "“": "”", "„": "“"}.get(char, '"')
            end = text.find(closing, i + 1)
            if end < 0:
                raise QueryError("a quote is opened but never closed", i)
            lexemes.append(_Lexeme("phrase", text[i + 1 : end], i))
            i = end + 1
        elif char == "|":
            lexemes.append(_Lexeme("or", char, i))
            i += 1
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in '"«“„|':
                i += 1
            word = text[start:i]
            kind = "or" if word == "OR" else "word"
            lexemes.append(_Lexeme(kind, word, start))
    return lexemes


def _phrase(lexeme: _Lexeme) -> Phrase:
    words = tuple(token.norm for token in tokenize(lexeme.text))
    if not words:
        what = "the quotes hold" if lexeme.kind == "phrase" else f"{lexeme.text[:40]} has"
        raise QueryError(f"{what} no letters or digits to search for", lexeme.position)
    return Phrase(words)


def parse_query(text: str) -> Query:
    """Parse a query or raise QueryError saying what is wrong and where."""
    text = text.strip()
    if not text:
        raise QueryError("the query is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is longer than {MAX_QUERY_CHARS} characters")
    lexemes = _lex(text)
    branches: list[list[Phrase]] = [[]]
    for index, lexeme in enumerate(lexemes):
        if lexeme.kind == "or":
            if not branches[-1]:
                raise QueryError("OR needs a word or phrase before it", lexeme.position)
            if index == len(lexemes) - 1:
                raise QueryError("OR needs a word or phrase after it", lexeme.position)
            branches.append([])
        else:
            branches[-1].append(_phrase(lexeme))
    terms = sum(len(branch) for branch in branches)
    if terms > MAX_QUERY_TERMS:
        raise QueryError(f"the query has {terms} terms; at most {MAX_QUERY_TERMS} are allowed")
    alternatives: list[Node] = [
        branch[0] if len(branch) == 1 else AllOf(tuple(branch)) for branch in branches
    ]
    root = alternatives[0] if len(alternatives) == 1 else AnyOf(tuple(alternatives))
    return Query(text, root)
