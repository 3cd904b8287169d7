"""The query language and matcher: a table of cases in Russian, Ukrainian and English.

Each row is what a user would notice: a post that must reach them, or one that must not.
"""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain import Subscription
from bot.matching import QueryError, QueryIndex, QueryMatcher, parse_query
from bot.matching.query import MAX_QUERY_CHARS, parse_steps
from bot.matching.text import Tokenizer, tokenize

NOW = datetime(2026, 11, 20, tzinfo=UTC)

# (query, post text, should match)
CASES: list[tuple[str, str, bool]] = [
    # --- case and Unicode -----------------------------------------------------------------
    ("Oreshnik", "The Oreshnik missile", True),
    ("oreshnik", "THE ORESHNIK MISSILE", True),
    ("Ёлка", "елка во дворе", True),
    ("елка", "Ёлка во дворе", True),
    ("Oreshnik", "Ｏｒｅｓｈｎｉｋ launched", True),  # full-width letters: NFKC folds them
    ("мораторий", "МОРАТОРИЙ продлён", True),
    # --- Ukrainian and Belarusian letters ------------------------------------------------
    ("Орешник", "ГУР: позиції для комплексу «Орєшник»", True),
    ("Искандер", "ракети «Іскандер-М»", True),
    ("мораторий", "відмова від мораторію", True),
    ("Іскандер", "ОТРК Искандер на учениях", True),
    ("Ґрунт", "грунт промерз", True),
    # --- Russian morphology ---------------------------------------------------------------
    ("Ракета", "пуск ракеты", True),
    ("Ракета", "удар ракетой", True),
    ("ракета", "ракетами и ракетах", True),
    ("Калибр", "удар Калибром", True),
    ("Калибр", "пуски «Калибра»", True),
    ("Калибр", "калибровка прицелов", False),
    ("Калибр", "крупнокалиберных пулемётов", False),
    ("Орешник", "дивизион «Орешника»", True),
    ("Орешник", "🚀Орешником🚀 можно", True),
    ("Орешник", "забил Артём Орешкин", False),
    ("Искандер", "несколько комплектов Искандеров", True),
    ("договор", "договора о РСМД", True),
    ("договор", "стороны готовы договориться", False),
    ("мораторий", "ситуацию с мораторием", True),
    ("Кинжал", "пуск Кинжала", True),
    # --- English morphology ---------------------------------------------------------------
    ("missile", "two missiles were fired", True),
    ("missiles", "a missile was fired", True),
    ("treaty", "both treaties collapsed", True),
    ("launch", "they launched and kept launching", True),
    ("deploy", "deployment", False),
    # --- script: transliteration both ways ------------------------------------------------
    ("Kalibr", "удар Калибром по", True),
    ("Kinzhal", "пуск Кинжала", True),
    ("Oreshnik", "комплекс «Орешник» на марше", True),
    ("Iskander", "бригады с Искандерами", True),
    ("Tsirkon", "ракета «Циркон»", True),
    ("Орешник", "Oreshnik claims are circulating", True),
    ("Кинжал", "a Kinzhal was intercepted", True),
    ("Сармат", "Sarmat test", True),
    ("Su-34", "бомбардировщики Су-34", True),
    ("Су-34", "Su-34 bombers", True),
    # --- look-alike letters -------------------------------------------------------------
    ("9M729", "ракета 9М729", True),  # query Latin M, post Cyrillic М
    ("9М729", "missile 9M729", True),  # query Cyrillic М, post Latin M
    ("X-101", "ракеты Х-101 с Ту-95МС", True),  # Cyrillic Х in the post
    ("Х-101", "Kh-101 and X-101 missiles", True),
    ("Орешник", "комплекс Oрешник", True),  # a Latin O inside a Cyrillic word
    ("ТОР", "TOP secret", False),  # look-alikes are not folded in ordinary words
    # --- tokens: hyphens, possessives, hashtags, quotes, emoji, URLs, mentions -------------
    ("Искандер-М", "ОТРК «Искандер-М» на учениях", True),
    ("Искандер", "ОТРК «Искандер-М» на учениях", True),
    ("Су-34", "самолёт Су-35 над морем", False),
    ("S-400", "дивизион С-400 развернут", True),
    ("post-war", "the post-war order", True),
    ("Kalibr", "Kalibr's range is long", True),
    ("Калибр", "#Калибр новости", True),
    ("Орешник", "#Орешник Источники сообщают", True),
    ("Oreshnik", "🚨Oreshnik🚨 claims", True),
    ("Oreshnik", "“Oreshnik” and «Oreshnik»", True),
    ("Oreshnik", "see https://t.me/oreshnik_news/12", False),
    ("Oreshnik", "cc @oreshnik_watch", False),
    ("Oreshnik", "read www.oreshnik.example/page", False),
    # --- whole words ---------------------------------------------------------------------
    ("INF", "new info on infantry", False),
    ("INF", "more information", False),
    ("INF", "after the INF, nothing", True),
    ("INF", "INFs were destroyed", True),
    ("Kalibr", "Calibration guide", False),
    # --- aliases -------------------------------------------------------------------------
    ("INF", "выход из Договора о РСМД", True),
    ("РСМД", "the INF Treaty", True),
    ("9M729", "SSC-8 launchers", True),
    ('"New START"', "без ДСНВ", True),
    # --- phrases -------------------------------------------------------------------------
    ('"INF Treaty"', "the INF treaty collapsed", True),
    ('"INF Treaty"', "the Treaty on INF", False),
    ('"INF Treaty"', "INF: Treaty", True),  # punctuation between words is not a word
    ('"INF Treaty"', "about INF. Treaty talks", False),  # ... but a sentence end stops it
    ('"Капустин Яр"', "на полигоне Капустин Яр", True),
    ('"договор о РСМД"', "выход из Договора о РСМД", True),
    ('"New START"', "New START data", True),
    ('"New START"', "a new start for talks", True),
    ('"New START"', "START is new", False),
    # --- AND, OR, NOT, grouping --------------------------------------------------------
    ("Oreshnik Belarus", "Oreshnik deployed in Belarus", True),
    ("Oreshnik Belarus", "Oreshnik in Russia", False),
    ("Oreshnik AND Belarus", "Belarus gets Oreshnik", True),
    ("Oreshnik OR Burevestnik", "Burevestnik test", True),
    ("Oreshnik | Burevestnik", "nothing here", False),
    ("Орешник -сад", "Орешник на марше", True),
    ("Орешник -сад", "Орешник в саду обрезать", False),
    ("Орешник NOT обрезка", "обрезка: орешник", False),
    ("(Oreshnik OR Орешник) Belarus", "Орешник в Belarus", True),
    ("(Oreshnik OR Burevestnik) Belarus", "Burevestnik test", False),
    ("мораторий -(США OR Вашингтон)", "мораторий и Вашингтон", False),
    ("мораторий -(США OR Вашингтон)", "мораторий продлён", True),
    # --- prefix, exact, regex ------------------------------------------------------------
    ("морат*", "мораторием", True),
    ("морат*", "море", False),
    ("info*", "information", True),
    ("=Калибр", "Калибром", False),
    ("=Калибр", "КАЛИБР", True),
    ("=missile", "missiles", False),
    ("/9[мm]7\\d\\d/", "ракета 9М729", True),
    ("/9[мm]7\\d\\d/", "ракета 9М82", False),
    ("/ss-?\\d+/ Russia", "SS-26 in Russia", True),
]


@pytest.mark.parametrize(("query", "text", "expected"), CASES)
def test_query_table(query: str, text: str, expected: bool) -> None:
    assert (QueryMatcher(query).spans(text) is not None) is expected


def test_the_table_is_large_and_balanced() -> None:
    assert len(CASES) >= 80
    assert sum(1 for *_, expected in CASES if not expected) >= 25


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ('"unclosed', "quote is opened but never closed (at character 1)"),
        ("(Oreshnik OR INF", "( is never closed (at character 1)"),
        ("Oreshnik)", ") has no matching ( (at character 9)"),
        ("OR Oreshnik", "OR needs something to search for before it"),
        ("Oreshnik OR", "OR needs something to search for after it"),
        ("Oreshnik AND", "AND needs something to search for on both sides"),
        ("Oreshnik ()", "( ) holds nothing"),
        ('""', "no letters or digits"),
        ("-Oreshnik", "only excludes"),
        ("NOT Oreshnik", "only excludes"),
        ("Oreshnik OR -hazel", "only excludes"),
        ("Oreshnik -", "has no letters or digits"),
        ("/[/", "the /regex/ is not valid"),
        ("/abc", "/regex/ is opened but never closed"),
        ("//", "the /regex/ is empty"),
        ("o*", "at least 2 letters"),
        ("o*r", "* may only end a word"),
        ("=word*", "either =word or word*"),
        ("x" * (MAX_QUERY_CHARS + 1), "longer than 500"),
        (" ".join(f"w{n}" for n in range(51)), "more than 50 terms"),
        ("(" * 11 + "a" + ")" * 11, "nest deeper than 10"),
    ],
)
def test_malformed_queries_say_what_is_wrong(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=re.escape(message)):
        parse_query(query)


def test_index_returns_each_matching_subscription_with_spans() -> None:
    subscriptions = [
        Subscription(1, 10, "Oreshnik", NOW),
        Subscription(2, 10, '"INF Treaty"', NOW),
        Subscription(3, 20, "Iskander", NOW),
        Subscription(4, 30, "Oreshnik", NOW),  # the same query of another chat
    ]
    index = QueryIndex(subscriptions)
    text = "«Орешника» и the INF Treaty"
    hits = {hit.subscription.id: hit.spans for hit in index.match(text)}
    assert set(hits) == {1, 2, 4}
    assert [text[s.start : s.end] for s in hits[1]] == ["Орешника"]
    assert [text[s.start : s.end] for s in hits[2]] == ["INF", "Treaty"]


def test_index_add_and_remove() -> None:
    index = QueryIndex([Subscription(1, 10, "Oreshnik", NOW)])
    index.add(Subscription(2, 11, "Oreshnik", NOW))
    index.add(Subscription(3, 12, "/9[мm]7\\d\\d/", NOW))
    index.add(Subscription(4, 13, "морат* -США", NOW))
    index.add(Subscription(5, 14, "Oreshnik Belarus", NOW))
    index.add(Subscription(6, 15, '"Капустин Яр" OR (Oreshnik -Belarus -Russia)', NOW))
    assert {h.subscription.id for h in index.match("Oreshnik 9M729")} == {1, 2, 3, 6}
    assert {h.subscription.id for h in index.match("Oreshnik only")} == {1, 2, 6}
    assert {h.subscription.id for h in index.match("мораторием, Oreshnik, Belarus")} == {
        1,
        2,
        4,
        5,
    }
    assert {h.subscription.id for h in index.match("мораторий США")} == set()
    assert {h.subscription.id for h in index.match("с полигона Капустин Яр")} == {6}
    for subscription_id in (1, 3, 4, 5, 6):
        index.remove(subscription_id)
    assert {h.subscription.id for h in index.match("Oreshnik 9M729")} == {2}
    index.remove(2)
    assert index.match("Oreshnik") == []
    assert len(index) == 0


def test_only_candidate_queries_are_evaluated() -> None:
    subscriptions = [Subscription(n, n, f"ракета Kapustin{n}", NOW) for n in range(500)]
    subscriptions.append(Subscription(999, 1, "Oreshnik", NOW))
    index = QueryIndex(subscriptions)
    view = index.view("Oreshnik: ракета, ракеты, ракетой")
    # `ракета KapustinN` is filed under its longer, rarer-looking term, not under `ракета`.
    assert index.candidates(view) == {"Oreshnik"}


def test_hostile_posts_are_matched_without_trouble() -> None:
    index = QueryIndex([Subscription(1, 1, "Oreshnik", NOW)])
    long_post = ("слово " * 2000) + "Oreshnik"
    assert len(index.match(long_post)) == 1
    assert index.match("<b>Oreshnik</b> &amp; \u202eOreshnik\u200b")[0].spans
    assert index.match("\x00\ud800 \U0001f680" * 100) == []


def test_tokens_skip_urls_and_mentions_and_keep_offsets() -> None:
    text = "См. https://t.me/x/1 и @milinfo: «Искандер-М», Kalibr's #Калибр"
    tokens = tokenize(text)
    assert [t.norm for t in tokens] == ["см", "и", "искандер", "m", "kalibr", "калибр"]
    assert [text[t.start : t.end] for t in tokens][-3:] == ["М", "Kalibr", "Калибр"]


# --- property-based: the parser never crashes and its work is linear --------------------

QUERY_ALPHABET = st.sampled_from(
    [*list('abcXYZабвЁЇ0189 ()"«»|-=*/\\.,&#@\t\n'), "OR", "AND", "NOT", "/", "(", ")"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(QUERY_ALPHABET, max_size=200).map("".join))
def test_parser_never_crashes(text: str) -> None:
    try:
        query = parse_query(text)
    except QueryError as exc:
        message = str(exc)
    else:
        message = ""
        assert len(query.text) <= MAX_QUERY_CHARS
    assert message or query


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=600))
def test_parser_never_crashes_on_any_text(text: str) -> None:
    with contextlib.suppress(QueryError):
        parse_query(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(QUERY_ALPHABET, min_size=1, max_size=400).map("".join))
def test_parser_work_is_linear_in_input(text: str) -> None:
    # Steps are counted by the parser itself: a deterministic measure, not a timing.
    assert parse_steps(text) <= 4 * len(text) + 10


@pytest.mark.parametrize(
    "text",
    [
        "(" * 400,
        "a OR " * 100,
        '"' * 500,
        "-" * 500,
        " ".join(["NOT"] * 120),
    ],
)
def test_parser_on_pathological_inputs(text: str) -> None:
    assert parse_steps(text) <= 4 * len(text) + 10
    with pytest.raises(QueryError):
        parse_query(text)


def test_regex_runs_in_linear_time_engine() -> None:
    # A catastrophic pattern for a backtracking engine finishes at once with RE2.
    matcher = QueryMatcher("/(a+)+$/ x")
    assert matcher.spans("x " + "a" * 5000 + "!") is None


def test_index_agrees_with_evaluating_every_query_alone() -> None:
    # The index's shortcuts (atoms, clauses, pairs, exclusions) must never change an answer.
    queries = sorted({query for query, _, _ in CASES})
    index = QueryIndex(Subscription(n, n, query, NOW) for n, query in enumerate(queries))
    matchers = {query: QueryMatcher(query) for query in queries}
    texts = {text for _, text, _ in CASES}
    for text in texts:
        expected = {
            query for query, matcher in matchers.items() if matcher.spans(text) is not None
        }
        assert {hit.subscription.query for hit in index.match(text)} == expected, text


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["Орешник", "9М729", "https://t.me/x/1", "@milinfo", "INF’s", "Су-34", "\n", "—", "😀"]
        ),
        min_size=900,
        max_size=1200,
    )
)
def test_long_posts_are_read_in_pieces_without_changing_a_word(words: list[str]) -> None:
    # Matching reads long posts in pieces cut at whitespace (so no single regex call holds
    # the GIL for long); the words found must be exactly those of one pass over the text.
    text = " ".join(words)
    assert len(text) > 4096
    tokenizer = Tokenizer()
    assert tokenizer.norms(text) == tokenizer.scan(text)[0]
