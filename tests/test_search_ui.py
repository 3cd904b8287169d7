"""/search as a user meets it: all stored history, pages with ◀ ▶, forms and scripts, the
chat's time zone, hostile queries; and `recent_matches` behind the /subscribe preview.

Through the real dispatcher and the stand-in Bot API, in English and Russian. Thousands of
posts are stored with one SQL statement (the service's `save_post` takes a transaction
each), so that matches lie beyond the newest 5,000 the old search looked through.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import handlers.search as search_module
from bot.matching import QueryError, parse_query
from bot.matching.candidates import fts_filter
from bot.storage import Storage
from handlers.search import SEARCH_DEPTH, Hunt, Searches, recent_matches
from tests.botapi import CallbackAnswer, FakeBotAPI, SentMessage, buttons
from tests.conftest import USER, Chat

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
OLD = NOW - timedelta(days=400)  # older than every filler post
ARCHIVE = SEARCH_DEPTH + 1_000  # filler posts, all newer than the posts searched for
TEXTS = {
    "en": {
        "one": "1 post matches",
        "twelve": "12 posts match",
        "page": "(page {page} of {pages})",
        "none": "No stored post matches",
        "expired": "This search has expired",
        "about": "About 6,000 posts match",
        "about-pages": "(page 1 of ~1,200)",
    },
    "ru": {
        "one": "Найден 1 пост",
        "twelve": "Найдено 12 постов",
        "page": "(стр. {page} из {pages})",
        "none": "Ни один сохранённый пост не подходит",
        "expired": "Этот поиск устарел",
        "about": "Найдено около 6\xa0000 постов",  # a no-break space groups digits
        "about-pages": "(стр. 1 из ~1\xa0200)",
    },
}


def store(
    path: Path,
    posts: Iterable[tuple[str, datetime, str]],
    *,
    channel: str = "milinfo",
    title: str | None = "Military Informant",
) -> None:
    """Store posts (id, date, text) at once, as `save_post` stores them, without alerts."""
    rows = [
        (
            "tgweb",
            channel,
            post_id,
            date.astimezone(UTC).isoformat(timespec="microseconds"),
            text,
            f"https://t.me/{channel}/{post_id}",
            date.isoformat(),
            date.isoformat(),
            title,
        )
        for post_id, date, text in posts
    ]
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executemany(
            "INSERT INTO posts (source, channel, post_id, date, text, url, stored_at,"
            " updated_at, channel_title) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.commit()


def database(tmp_path: Path) -> Path:
    return tmp_path / "dozor.sqlite3"  # the `storage` fixture's file


@pytest.fixture
def archive(storage: Storage, tmp_path: Path) -> Path:
    """More filler posts than the newest SEARCH_DEPTH, all newer than OLD."""
    path = database(tmp_path)
    store(
        path,
        (
            (f"f{n}", NOW - timedelta(minutes=n + 1), f"Weather report {n}: sunny, light wind.")
            for n in range(ARCHIVE)
        ),
        channel="weather",
        title=None,
    )
    return path


async def search(
    api: FakeBotAPI, text: str, language: str = "en", chat_id: int = USER
) -> SentMessage:
    """Send a search; the bot's reply."""
    before = len(api.sent_to(chat_id))
    api.push_message(chat_id, text, user_id=chat_id, language_code=language)
    return (await api.wait_for_sent(before + 1, chat_id=chat_id))[-1]


def shown(api: FakeBotAPI, message: SentMessage) -> SentMessage:
    """The message as it is now, after edits."""
    current = api.current(message.chat_id, message.message_id)
    assert current is not None
    return current


async def press(
    api: FakeBotAPI, message: SentMessage, label: str, language: str = "en"
) -> CallbackAnswer:
    """Press the button labelled `label` of a message as it is now."""
    (data,) = [d for row in buttons(shown(api, message)) for text, d in row if text == label]
    return await api.press(message.chat_id, message.message_id, data, language_code=language)


def labels(api: FakeBotAPI, message: SentMessage) -> list[str]:
    return [text for row in buttons(shown(api, message)) for text, _ in row]


# --- all history, paging ------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_pages_through_matches_beyond_the_newest_5000(
    chat: Chat, api: FakeBotAPI, archive: Path, language: str
) -> None:
    words = TEXTS[language]
    store(
        archive,
        ((f"m{n}", OLD + timedelta(hours=n), f"Пуск «Орешника» номер {n}.") for n in range(12)),
    )
    reply = await search(api, "/search Oreshnik", language)
    assert words["twelve"] in reply.text
    assert words["page"].format(page=1, pages=3) in reply.text
    # Newest first, numbered, each linking to its post, the matched word in bold.
    order = [f'href="https://t.me/milinfo/m{n}"' for n in range(11, 6, -1)]
    positions = [reply.text.index(link) for link in order]
    assert positions == sorted(positions)
    assert "<b>1.</b>" in reply.text
    assert "<b>5.</b>" in reply.text
    assert "<b>Орешника</b>" in reply.text
    assert "Military Informant" in reply.text
    assert labels(api, reply) == ["▶"]

    answer = await press(api, reply, "▶", language)
    assert answer.text is None
    page = shown(api, reply).text
    assert words["page"].format(page=2, pages=3) in page
    assert "<b>6.</b>" in page
    assert 'href="https://t.me/milinfo/m6"' in page
    assert 'href="https://t.me/milinfo/m11"' not in page
    assert labels(api, reply) == ["◀", "▶"]

    await press(api, reply, "▶", language)
    last = shown(api, reply).text
    assert words["page"].format(page=3, pages=3) in last
    assert 'href="https://t.me/milinfo/m1"' in last
    assert 'href="https://t.me/milinfo/m0"' in last
    assert "<b>12.</b>" in last
    assert labels(api, reply) == ["◀"]  # the last page

    await press(api, reply, "◀", language)
    assert words["page"].format(page=2, pages=3) in shown(api, reply).text
    await press(api, reply, "◀", language)
    assert shown(api, reply).text == reply.text  # back where it began
    assert len(api.sent_to(USER)) == 1  # every page in the same message


async def test_a_double_tap_is_harmless(chat: Chat, api: FakeBotAPI, archive: Path) -> None:
    store(archive, ((f"m{n}", OLD + timedelta(hours=n), f"Орешник {n}") for n in range(7)))
    reply = await search(api, "/search Орешник")
    (data,) = [d for row in buttons(reply) for _, d in row]
    await api.press(USER, reply.message_id, data)
    # The same button again, on a message that already shows its page: Telegram says
    # "message is not modified", which is no error for the user.
    answer = await api.press(USER, reply.message_id, data, check_button=False)
    assert answer.text is None
    assert "(page 2 of 2)" in shown(api, reply).text
    assert len(api.sent_to(USER)) == 1


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_a_common_word_gets_an_estimate(
    chat: Chat, api: FakeBotAPI, archive: Path, language: str
) -> None:
    reply = await search(api, "/search weather", language)
    assert TEXTS[language]["about"] in reply.text
    assert TEXTS[language]["about-pages"] in reply.text
    assert 'href="https://t.me/weather/f0"' in reply.text  # the newest first


# --- stale and forged presses -------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_stale_and_forged_page_presses_get_a_toast(
    chat: Chat, api: FakeBotAPI, archive: Path, language: str
) -> None:
    expired = TEXTS[language]["expired"]
    store(archive, ((f"m{n}", OLD + timedelta(hours=n), f"Орешник {n}") for n in range(12)))
    first = await search(api, "/search Орешник", language)
    (data,) = [d for row in buttons(first) for _, d in row]
    prefix, key, _page = data.split(":")
    forged = [
        f"{prefix}:nosuchkey:2",  # never issued
        f"{prefix}:{key}:0",  # no page 0
        f"{prefix}:{key}:abc",  # not a number
        f"{prefix}:{key}:9",  # a page the search never offered
        f"{prefix}:{key}",  # fields missing
    ]
    for forgery in forged:
        answer = await api.press(
            USER, first.message_id, forgery, language_code=language, check_button=False
        )
        assert answer.text is not None
        assert expired in answer.text, forgery
    assert shown(api, first).text == first.text  # nothing changed

    # Another chat cannot page this chat's search with its key.
    other = 777
    theirs = await search(api, "/search Орешник", language, chat_id=other)
    answer = await api.press(
        other, theirs.message_id, data, language_code=language, check_button=False
    )
    assert answer.text is not None
    assert expired in answer.text

    # A chat's older searches are forgotten: the first one's buttons expire.
    for _ in range(3):
        await search(api, "/search Орешник", language)
    answer = await api.press(USER, first.message_id, data, language_code=language)
    assert answer.text is not None
    assert expired in answer.text
    assert not any("Something went wrong" in m.text for m in api.sent)


# --- forms, scripts, special characters ---------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Oreshnik", {"oreshnik"}),
        ("Су-34", {"su34"}),
        ("Su-34", {"su34"}),
        ("Іскандер", {"uk-iskander", "ru-iskander"}),
        ("Искандер", {"uk-iskander", "ru-iskander"}),
        ("9М729", {"code"}),  # a Cyrillic М finds the Latin M of the post
        ("Королев", {"korolev"}),  # the post writes ё
        ("Капустин Яр", {"oreshnik"}),
        ('"Капустина Яра"', {"oreshnik"}),  # a phrase in another case
        ("Ореш*", {"oreshnik"}),
        ("Tu-95MS", {"tu95"}),  # the post mixes scripts in `Tу-95МС`
    ],
)
async def test_forms_and_scripts_reach_old_posts(
    chat: Chat, api: FakeBotAPI, archive: Path, query: str, expected: set[str]
) -> None:
    store(
        archive,
        [
            ("oreshnik", OLD, "Пуск «Орешника» с полигона Капустин Яр."),
            ("su34", OLD, "Су-34 нанёс удар по переправе."),
            ("uk-iskander", OLD, "Іскандер-М знову на позиції."),
            ("ru-iskander", OLD, "Дивизион Искандеров выдвинулся к границе."),
            ("code", OLD, "Ракета 9M729 снова в новостях."),
            ("korolev", OLD, "Завод в Королёве получил заказ."),
            ("tu95", OLD, "Tу-95МС поднялись с аэродрома."),
            ("other", OLD, "Погода на выходные: дождь."),
        ],
    )
    reply = await search(api, f"/search {query}")
    posts = ("oreshnik", "su34", "uk-iskander", "ru-iskander", "code", "korolev", "tu95", "other")
    found = {post for post in posts if f'href="https://t.me/milinfo/{post}"' in reply.text}
    assert found == expected, reply.text
    assert f"{len(expected)} post" in reply.text


@pytest.mark.parametrize(
    "query",
    [
        "NEAR(Oreshnik, 2)",
        "Oreshnik NEAR лещина",
        "col:Oreshnik",
        "^Oreshnik",
        "{Oreshnik}",
        "Oreshnik + *",
        "Oreshnik AND NOT лещина",
        '"Oreshnik" "AND" "OR" "NOT"',
        "'Oreshnik'",
        'Oreshnik -"лещина OR"',
        "Oreshnik OR x*",
        "Ореш*",
        'Oreshnik "*"',
        '"" Oreshnik',
        "Oreshnik)",
    ],
)
async def test_fts_syntax_in_a_query_is_never_an_error(
    chat: Chat, api: FakeBotAPI, archive: Path, query: str
) -> None:
    store(archive, [("oreshnik", OLD, "Пуск «Орешника» с полигона.")])
    reply = await search(api, f"/search {query}")
    assert "Something went wrong" not in reply.text
    # Either the post was searched for (found or not), or the query's own error was shown.
    assert any(text in reply.text for text in ("post match", "No stored post", "can't use"))


async def test_a_regex_alone_scans_only_the_newest_posts(
    chat: Chat, api: FakeBotAPI, archive: Path
) -> None:
    store(archive, [("old", OLD, "Пуск «Орешника».")])
    store(archive, [("new", NOW, "Орешник снова.")])
    reply = await search(api, r"/search /Орешник\w*/")
    assert "1 post matches" in reply.text
    assert 'href="https://t.me/milinfo/new"' in reply.text
    assert f"only through the newest {SEARCH_DEPTH:,} posts" in reply.text
    # In an OR, the regex branch cannot be narrowed either.
    assert "1 post matches" in (await search(api, r"/search Oreshnik OR /Орешник\w*/")).text
    # With a term beside it, the index narrows the query: all history again.
    both = await search(api, r"/search Oreshnik /Орешник\w*/")
    assert "2 posts match" in both.text
    assert "only through the newest" not in both.text


# --- time zones -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "last_year"), [("en", "28 Nov 2024 14:05 JST"), ("ru", "28 нояб. 2024 14:05 JST")]
)
async def test_times_are_in_the_chats_zone(
    chat: Chat,
    api: FakeBotAPI,
    storage: Storage,
    tmp_path: Path,
    language: str,
    last_year: str,
) -> None:
    await search(api, "/start", language)
    lately = (NOW - timedelta(days=1)).replace(hour=5, minute=5)  # 14:05 in Tokyo
    store(
        database(tmp_path),
        [
            ("then", datetime(2024, 11, 28, 5, 5, tzinfo=UTC), "Орешник тогда."),
            ("lately", lately, "Орешник сейчас."),
        ],
    )
    in_utc = await search(api, "/search Орешник", language)  # the service's zone: UTC
    assert "05:05 UTC" in in_utc.text
    await storage.update_subscriber(USER, timezone="Asia/Tokyo")
    reply = await search(api, "/search Орешник", language)
    assert last_year in reply.text  # another year's post shows its year
    if language == "en":
        assert f"{lately.day} {lately:%b} 14:05 JST" in reply.text
    assert "UTC" not in reply.text


# --- recent_matches ---------------------------------------------------------------------


async def test_recent_matches_counts_the_period_and_gives_the_newest(
    storage: Storage, archive: Path
) -> None:
    since = NOW - timedelta(days=7)
    store(
        archive,
        [
            # Older than every filler post, yet within the period: no depth limit here.
            ("a", since + timedelta(minutes=1), "Пуск «Орешника»."),
            ("b", since + timedelta(minutes=2), "Орешник снова."),
            ("c", since + timedelta(minutes=3), "Oreshnik launched."),
            ("before", since - timedelta(minutes=1), "Орешник давно."),
            ("hazel", since + timedelta(minutes=4), "Лещина и погода."),
        ],
    )
    searches = Searches()
    try:
        count, newest, finished = await recent_matches(storage, searches, "Орешник", since)
        assert (count, finished) == (3, True)
        assert [post.post.post_id for post, _ in newest] == ["c", "b"]
        post, spans = newest[0]
        assert [post.post.text[s.start : s.end] for s in spans] == ["Oreshnik"]

        count, newest, _ = await recent_matches(storage, searches, "Орешник", since, newest=5)
        assert [post.post.post_id for post, _ in newest] == ["c", "b", "a"]
        # A regex cannot use the index: the period is scanned instead, with the same count.
        count, newest, finished = await recent_matches(
            storage, searches, r"/Орешник\w*|Oreshnik/", since
        )
        assert (count, finished) == (3, True)
        assert await recent_matches(storage, searches, "Burevestnik", since) == (0, [], True)
        with pytest.raises(QueryError):
            await recent_matches(storage, searches, "(Oreshnik", since)
    finally:
        searches.close()


async def test_recent_matches_says_when_it_ran_out_of_time(
    storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store(database(tmp_path), [("a", NOW, "Орешник.")])
    monkeypatch.setattr(search_module, "SEARCH_TIME_LIMIT", -1.0)  # out of time at once
    searches = Searches()
    try:
        count, newest, finished = await recent_matches(
            storage, searches, "Орешник", NOW - timedelta(days=7)
        )
    finally:
        searches.close()
    assert (count, newest, finished) == (0, [], False)  # a lower bound, and it says so


async def test_a_filter_the_index_refuses_falls_back_to_a_scan(
    storage: Storage, tmp_path: Path
) -> None:
    """A bug guard: were a built filter ever invalid FTS5, the search still answers."""
    store(database(tmp_path), [("a", NOW, "Орешник.")])
    searches = Searches()
    try:
        for since in (None, NOW - timedelta(days=1)):
            hunt = Hunt("Орешник", '"орешник" AND', since)
            assert await searches.advance(storage, hunt, 10)
            assert hunt.fts is None
            assert len(hunt.matched) == 1
    finally:
        searches.close()


# --- the candidate filter ---------------------------------------------------------------


def _fts_database() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE posts_fts USING fts5 (text,"
        " tokenize = 'unicode61 remove_diacritics 2')"
    )
    return db


_FTS = _fts_database()
_QUERY_CHARS = st.sampled_from(list("ab ОрешникІі-*\"()|=/:^+NEAR OR AND NOT 9М729 «»'{}"))


@settings(max_examples=300, deadline=None)
@given(st.lists(_QUERY_CHARS, max_size=40).map("".join))
def test_every_query_gives_a_valid_fts_expression(text: str) -> None:
    try:
        query = parse_query(text)
    except QueryError:
        return
    expression = fts_filter(query)
    if expression is not None:
        _FTS.execute("SELECT count(*) FROM posts_fts WHERE posts_fts MATCH ?", (expression,))


def test_the_filter_maps_each_query_shape() -> None:
    def terms(query: str) -> str | None:
        return fts_filter(parse_query(query))

    compound = terms("Су-34")
    assert compound is not None
    assert '"су"' in compound
    assert '"34"*' in compound  # `152мм` is one token of the index
    assert " AND " in compound
    prefix = terms("Искан*")
    assert prefix is not None
    assert '"іскан"*' in prefix
    ukrainian = terms("Искандер")
    assert ukrainian is not None
    assert '"іскандер"' in ukrainian
    code = terms("9М729")
    assert code is not None
    assert '"9м729"' in code
    assert '"9m729"' in code
    excluded = terms("Oreshnik -лещина")
    assert excluded is not None
    assert "лещин" not in excluded  # exclusions are the matcher's
    assert terms("Oreshnik OR /x\\d/") is None
    assert terms("/x\\d/") is None
    with_regex = terms("Oreshnik /x\\d/")
    assert with_regex is not None
    assert "орешника" in with_regex
