"""The query language: one parser for subscriptions, `/search` and `dozor match`.

    word          any form of the word        "two words"   adjacent, in this order
    a b, a AND b  both                        a OR b, a | b either
    -a, NOT a     must not occur              ( ... )       grouping
    word*         any word starting so        =word         exactly this form
    /regex/       RE2 regular expression (linear time, never backtracking)

The parser is a single left-to-right pass over at most MAX_QUERY_CHARS characters, so its
work is linear in the input; errors say what is wrong and at which character.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field

import re2

from bot.matching.forms import prefix_form, split_parts

MAX_QUERY_CHARS = 500
MAX_QUERY_TERMS = 50
MAX_DEPTH = 10
MAX_REGEX_CHARS = 200
# The cost of running a regex grows with its compiled size: `(.*){1000}` (size 9,003) takes
# seconds on a long post, while real patterns (`9[МM]7\d\d`, `орешник\w*`) stay below 100.
# Within 1,000, the worst patterns found take ~25 ms on a 100,000-character post.
MAX_REGEX_PROGRAM = 1000
MAX_REGEXES = 3  # per query
MIN_PREFIX_CHARS = 2
EXAMPLE = 'Oreshnik OR "INF Treaty" -hazel'

_QUOTES = {'"': '"', "«": "»", "“": "”", "„": "“"}
_SPECIAL = set('()"«“„|')


class QueryError(ValueError):
    """A malformed query; `position` is the character offset where the problem is.

    `key` and `details` name the problem for the catalogues (`query-error-<key>`), so the
    chat reads it in its language; `str()` is the English sentence (CLI, logs).
    """

    def __init__(
        self,
        message: str,
        position: int | None = None,
        *,
        key: str = "",
        **details: str | int,
    ) -> None:
        where = f" (at character {position + 1})" if position is not None else ""
        super().__init__(f"{message}{where}")
        self.position = position
        self.key = key
        self.details = details


@dataclass(frozen=True, slots=True)
class Term:
    """A word or compound (`Су-34`); `exact` for `=word`, `prefix` for `word*`."""

    text: str
    exact: bool = False
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Phrase:
    """Words (as written, split on spaces) that must occur adjacent, in order, in any form."""

    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Regex:
    """A regular expression, compiled with RE2 (once, here), searched in the post text."""

    pattern: str
    compiled: re2._Regexp = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class AllOf:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


Node = Term | Phrase | Regex | AllOf | AnyOf | Not


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: the text as the user wrote it (whitespace folded) and its tree."""

    text: str
    root: Node


@dataclass(frozen=True, slots=True)
class _Lexeme:
    kind: str  # word, phrase, regex, or, and, not, open, close
    text: str
    position: int


def _lex(text: str) -> list[_Lexeme]:
    lexemes: list[_Lexeme] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in _QUOTES:
            end = text.find(_QUOTES[char], i + 1)
            if end < 0:
                raise QueryError("a quote is opened but never closed", i, key="open-quote")
            lexemes.append(_Lexeme("phrase", text[i + 1 : end], i))
            i = end + 1
        elif char == "(":
            lexemes.append(_Lexeme("open", char, i))
            i += 1
        elif char == ")":
            lexemes.append(_Lexeme("close", char, i))
            i += 1
        elif char == "|":
            lexemes.append(_Lexeme("or", char, i))
            i += 1
        elif char == "-" and i + 1 < n and not text[i + 1].isspace() and text[i + 1] != "-":
            lexemes.append(_Lexeme("not", char, i))
            i += 1
        elif char == "/":
            end = i + 1
            while end < n and text[end] != "/":
                end += 2 if text[end] == "\\" else 1
            if end >= n:
                raise QueryError("a /regex/ is opened but never closed", i, key="open-regex")
            lexemes.append(_Lexeme("regex", text[i + 1 : end], i))
            i = end + 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in _SPECIAL:
                i += 1
            word = text[start:i]
            kind = {"OR": "or", "AND": "and", "NOT": "not"}.get(word, "word")
            lexemes.append(_Lexeme(kind, word, start))
    return lexemes


class _Parser:
    """Recursive descent over the lexemes; `steps` counts work (tests check it is linear)."""

    def __init__(self, lexemes: list[_Lexeme], length: int) -> None:
        self.lexemes = lexemes
        self.index = 0
        self.length = length
        self.terms = 0
        self.regexes = 0
        self.steps = 0

    def peek(self) -> _Lexeme | None:
        self.steps += 1
        return self.lexemes[self.index] if self.index < len(self.lexemes) else None

    def take(self) -> _Lexeme:
        lexeme = self.lexemes[self.index]
        self.index += 1
        return lexeme

    def parse(self) -> Node:
        node = self.any_of(0)
        extra = self.peek()
        if extra is not None:
            assert extra.kind == "close"
            raise QueryError("a ) has no matching (", extra.position, key="unmatched-close")
        return node

    def any_of(self, depth: int) -> Node:
        children = [self.all_of(depth)]
        while (lexeme := self.peek()) is not None and lexeme.kind == "or":
            self.take()
            following = self.peek()
            if following is None or following.kind in ("or", "and", "close"):
                raise QueryError(
                    "OR needs something to search for after it", lexeme.position, key="or-after"
                )
            children.append(self.all_of(depth))
        return children[0] if len(children) == 1 else AnyOf(tuple(children))

    def all_of(self, depth: int) -> Node:
        children: list[Node] = []
        while (lexeme := self.peek()) is not None and lexeme.kind not in ("or", "close"):
            if lexeme.kind == "and":
                self.take()
                following = self.peek()
                if not children or following is None or following.kind in ("or", "and", "close"):
                    raise QueryError(
                        "AND needs something to search for on both sides",
                        lexeme.position,
                        key="and-sides",
                    )
                continue
            children.append(self.unary(depth))
        if not children:
            lexeme = self.peek()
            if lexeme is None:
                raise QueryError(
                    "the query ends where a term was expected", self.length, key="ends-early"
                )
            if lexeme.kind == "or":
                raise QueryError(
                    "OR needs something to search for before it", lexeme.position, key="or-before"
                )
            raise QueryError("( ) holds nothing to search for", lexeme.position, key="empty-group")
        return children[0] if len(children) == 1 else AllOf(tuple(children))

    def unary(self, depth: int) -> Node:
        lexeme = self.take()
        if lexeme.kind == "not":
            following = self.peek()
            if following is None or following.kind in ("or", "and", "close", "not"):
                raise QueryError(
                    f"{lexeme.text} needs a term to exclude after it",
                    lexeme.position,
                    key="not-after",
                    operator=lexeme.text,
                )
            return Not(self.unary(depth))
        if lexeme.kind == "open":
            if depth >= MAX_DEPTH:
                raise QueryError(
                    f"brackets nest deeper than {MAX_DEPTH} levels",
                    lexeme.position,
                    key="too-deep",
                    limit=MAX_DEPTH,
                )
            inner = self.peek()
            if inner is not None and inner.kind == "close":
                raise QueryError(
                    "( ) holds nothing to search for", lexeme.position, key="empty-group"
                )
            node = self.any_of(depth + 1)
            closing = self.peek()
            if closing is None:
                raise QueryError("a ( is never closed", lexeme.position, key="open-bracket")
            self.take()
            return node
        self.count_term(lexeme)
        if lexeme.kind == "phrase":
            words = tuple(chunk for chunk in lexeme.text.split() if split_parts(chunk))
            if not words:
                raise QueryError(
                    "the quotes hold no letters or digits", lexeme.position, key="empty-quotes"
                )
            return Phrase(words)
        if lexeme.kind == "regex":
            return _regex(lexeme)
        return _term(lexeme)

    def count_term(self, lexeme: _Lexeme) -> None:
        self.terms += 1
        if self.terms > MAX_QUERY_TERMS:
            raise QueryError(
                f"the query has more than {MAX_QUERY_TERMS} terms",
                lexeme.position,
                key="too-many-terms",
                limit=MAX_QUERY_TERMS,
            )
        if lexeme.kind == "regex":
            self.regexes += 1
            if self.regexes > MAX_REGEXES:
                raise QueryError(
                    f"a query may hold at most {MAX_REGEXES} /regex/ terms",
                    lexeme.position,
                    key="too-many-regexes",
                    limit=MAX_REGEXES,
                )


def _term(lexeme: _Lexeme) -> Term:
    text = lexeme.text
    exact = text.startswith("=")
    prefix = text.endswith("*")
    body = text[1 if exact else 0 : len(text) - (1 if prefix else 0)]
    if "*" in body:
        raise QueryError(
            "* may only end a word (word*)", lexeme.position + text.index("*"), key="star-inside"
        )
    if not split_parts(body):
        raise QueryError(
            f"{text[:40]} has no letters or digits to search for",
            lexeme.position,
            key="no-letters",
            term=text[:40],
        )
    if prefix:
        if exact:
            raise QueryError(
                "use either =word or word*, not both", lexeme.position, key="exact-and-prefix"
            )
        if len(split_parts(body)) > 1:
            raise QueryError(
                "word* takes a single word, not a compound", lexeme.position, key="prefix-compound"
            )
        if len(prefix_form(body)) < MIN_PREFIX_CHARS:
            raise QueryError(
                f"word* needs at least {MIN_PREFIX_CHARS} letters before the *",
                lexeme.position,
                key="prefix-short",
                limit=MIN_PREFIX_CHARS,
            )
    return Term(body, exact=exact, prefix=prefix)


def _regex(lexeme: _Lexeme) -> Regex:
    pattern = lexeme.text
    if not pattern:
        raise QueryError("the /regex/ is empty", lexeme.position, key="regex-empty")
    if re.search(r"(?<!\\)(?:\\\\)*\\C", pattern):
        # \C matches single bytes and breaks character offsets; nobody needs it for text.
        raise QueryError(
            "\\C (any byte) is not allowed in a /regex/", lexeme.position, key="regex-bytes"
        )
    if len(pattern) > MAX_REGEX_CHARS:
        raise QueryError(
            f"a /regex/ may be at most {MAX_REGEX_CHARS} characters",
            lexeme.position,
            key="regex-long",
            limit=MAX_REGEX_CHARS,
        )
    try:
        compiled = re2.compile(pattern, re2_options(max_mem=1 << 21))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise QueryError(
            f"the /regex/ is not valid: {reason}",
            lexeme.position,
            key="regex-invalid",
            reason=str(reason),
        ) from None
    size = max(compiled.programsize, compiled.reverseprogramsize)
    if size > MAX_REGEX_PROGRAM:
        raise QueryError(
            f"the /regex/ is too complex to run on every post (size {size:,}, at most "
            f"{MAX_REGEX_PROGRAM:,}); use fewer or smaller repetitions such as {{n}}",
            lexeme.position,
            key="regex-complex",
            size=size,
            limit=MAX_REGEX_PROGRAM,
        )
    return Regex(pattern, compiled)


def re2_options(*, max_mem: int) -> re2.Options:
    """RE2 as every regex here runs: case-insensitive, linear time, bounded memory."""
    options = re2.Options()
    options.case_sensitive = False
    # Only whole-match spans are used; without capture groups RE2 can stay on its fast DFA
    # path (`(.*){100}`: 2 ms instead of 590 ms on a long post).
    options.never_capture = True
    options.max_mem = max_mem
    options.log_errors = False  # a bad pattern reaches the user as a QueryError instead
    return options


def _only_excludes(node: Node) -> bool:
    """True when the node could match a post by absence alone."""
    if isinstance(node, Not):
        return True
    if isinstance(node, AllOf):
        return all(_only_excludes(child) for child in node.children)
    if isinstance(node, AnyOf):
        return any(_only_excludes(child) for child in node.children)
    return False


def parse_query(text: str) -> Query:
    """Parse a query or raise QueryError saying what is wrong and where."""
    text = " ".join(text.split())
    if not text:
        raise QueryError("the query is empty", key="empty")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(
            f"the query is longer than {MAX_QUERY_CHARS} characters",
            key="too-long",
            limit=MAX_QUERY_CHARS,
        )
    parser = _Parser(_lex(text), len(text))
    root = parser.parse()
    if _only_excludes(root):
        raise QueryError(
            "the query only excludes; add something to look for, e.g. Oreshnik -hazel",
            key="only-excludes",
        )
    return Query(text, root)


def parse_steps(text: str) -> int:
    """How many steps the parser took on a text (for the linear-time property test)."""
    folded = " ".join(text.split())[:MAX_QUERY_CHARS]
    try:
        parser = _Parser(_lex(folded), len(folded))
    except QueryError:
        return len(text)  # the lexer alone: one pass over the characters
    with contextlib.suppress(QueryError):
        parser.parse()
    return parser.steps + len(text)
