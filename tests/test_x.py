"""The X API v2 source against a stand-in X API on loopback, with the real store and matcher.

The answers in `tests/data/x/` were written for this project in the shape of real X API v2
answers: an expert account (@SokovNikolai, user id and post ids made up, 19-digit snowflakes
that agree with their dates) posting about INF-range missiles, Oreshnik and New START in English
and Russian: a t.co link, a photo, a quote, a reply, a long note tweet, a repost, `&amp;` escapes.
`timeline.json` holds the whole timeline; the stand-in server filters it by `since_id` and
`exclude`, and pages it newest first with `max_results` and `pagination_token`, as X does.
Problem answers (not found, suspended, 401, 403, 429) are the other files.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.delivery.render import source_name
from bot.domain import Post
from bot.i18n import Catalog
from bot.ingest import Matcher
from bot.sources import x
from bot.sources.base import RetryLater, SourceStopped
from bot.sources.health import at, describe, warning
from bot.sources.http import FetchError
from bot.sources.polling import PolledSource, Poller
from bot.sources.x import (
    TWEET_FIELDS,
    XAccountGone,
    XApi,
    XApiError,
    XAuthError,
    XOptions,
    XSource,
    tweet_to_post,
)
from bot.storage import Storage
from tests.feeds import RecordingFeed
from tests.loopback import LoopbackServer

EN = Catalog(strict=True).texts("en")

DATA = Path(__file__).parent / "data" / "x"
# Shaped like a real app-only bearer token; the tests check it never shows in an error or log.
TOKEN = "AAAAAAAAAAAAAAAAAAAAAFxq0AEAAAAAdozorTestOnly%2Bs3cr3t%3DQmVhcmVyVG9rZW5Gb3JUZXN0cw"
USER_ID = "1046340622488551424"
USERNAME = "SokovNikolai"
NAME = "Nikolai Sokov"  # the display name the user lookup gives
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=30)  # when a source with a saved cursor began to be watched
TOKEN_PREFIX = "7140dibdnow9c7btw3w"


def _answer(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return value


TIMELINE: list[dict[str, Any]] = _answer("timeline")["data"]
(
    MORATORIUM,  # EN, 19 Nov
    MORATORIY,  # RU
    NEW_START,  # a t.co link, &amp;; 20 Nov 09:05, 27 h before NOW
    ORESHNIK_RANGE,  # &gt; &lt;
    KAPUSTIN_YAR,  # two photos
    QUOTE,
    REPLY,
    LONG_NOTE,  # a note tweet in Russian with a link inside
    REPOST,
    MID_BELARUS,  # RU
    THREAD_1,  # 21 Nov 11:10, the newest before NOW
    THREAD_2,
    KOROTKO,  # RU
    THREAD_3,  # a t.co link
) = sorted((tweet["id"] for tweet in TIMELINE), key=int)
OWN = [MORATORIUM, MORATORIY, NEW_START, ORESHNIK_RANGE, KAPUSTIN_YAR, QUOTE, LONG_NOTE]
OWN += [MID_BELARUS, THREAD_1, THREAD_2, KOROTKO, THREAD_3]  # neither replies nor reposts
WITHIN_A_DAY = [ORESHNIK_RANGE, KAPUSTIN_YAR, QUOTE, LONG_NOTE, MID_BELARUS, THREAD_1]
FIRST_PAGE = [MORATORIUM, MORATORIY, NEW_START, *WITHIN_A_DAY]  # the own posts up to NOW
LOOKUP_PATH = f"/2/users/by/username/{USERNAME}"
TIMELINE_PATH = f"/2/users/{USER_ID}/tweets"


class FakeClock:
    """Epoch seconds that only move when a test moves them."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now


class FakeXApi(LoopbackServer):
    """Serves the saved timeline as X API v2 does, or misbehaves as a test asks.

    `lookup` and `tweets` pick what each endpoint answers: "ok" or the name of a failure.
    """

    def __init__(self) -> None:
        super().__init__()
        self.posts = sorted(TIMELINE, key=lambda tweet: int(tweet["id"]), reverse=True)
        self.upto = int(THREAD_1)  # posts above this id are "not yet posted"
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lookup = "ok"
        self.tweets = "ok"
        self.headers: dict[str, str] = {}  # sent with every answer (rate-limit headers)
        self.overlap = False  # each page repeats the last post of the page before
        self.oldest_page_first = False  # pages come oldest first, each in ascending order

    def timeline_requests(self) -> list[dict[str, str]]:
        return [query for path, query in self.requests if path == TIMELINE_PATH]

    def lookups(self) -> list[str]:
        return [path for path, _ in self.requests if path.startswith("/2/users/by/")]

    async def _lookup(self, request: web.Request) -> web.StreamResponse:
        refused = self._record_and_check(request)
        if refused is not None:
            return refused
        if self.lookup != "ok":
            return await self._misbehave(request, self.lookup)
        name = request.match_info["name"].lower()
        if name == USERNAME.lower():
            return self._json(_answer("user"))
        if name == "banned_analyst":
            return self._json(_answer("user_suspended"))
        return self._json(_answer("user_not_found"))  # X says so with HTTP 200

    async def _timeline(self, request: web.Request) -> web.StreamResponse:
        refused = self._record_and_check(request)
        if refused is not None:
            return refused
        mode = self.tweets
        if mode == "page2_500" and "pagination_token" in request.query:
            mode = "500"
        if mode == "suspended":
            return self._json(_answer("timeline_suspended"))
        if mode not in ("ok", "page2_500", "partial"):
            return await self._misbehave(request, mode)
        if request.match_info["id"] != USER_ID:
            return self._json(_answer("timeline_suspended"))
        answer = self._page(request.query)
        if mode == "partial":
            answer["errors"] = _answer("partial_errors")["errors"]
        return self._json(answer)

    def _page(self, query: Any) -> dict[str, Any]:
        size = int(query["max_results"])
        assert 5 <= size <= 100
        assert query["tweet.fields"] == TWEET_FIELDS
        exclude = set(query.get("exclude", "").split(",")) - {""}
        left_out = {"replied_to"} if "replies" in exclude else set()
        left_out |= {"retweeted"} if "retweets" in exclude else set()
        since = int(query.get("since_id", "0"))
        posts = [
            tweet
            for tweet in self.posts
            if since < int(tweet["id"]) <= self.upto
            and not {ref["type"] for ref in tweet.get("referenced_tweets", [])} & left_out
        ]
        if not posts:
            return _answer("empty")
        pages = [posts[start : start + size] for start in range(0, len(posts), size)]
        if self.oldest_page_first:
            pages = [list(reversed(page)) for page in reversed(pages)]
        token = query.get("pagination_token")
        number = int(token.removeprefix(TOKEN_PREFIX)) if token else 0
        page = pages[number]
        if self.overlap and number > 0:
            page = [pages[number - 1][-1], *page]
        meta: dict[str, Any] = {
            "result_count": len(page),
            "newest_id": max((tweet["id"] for tweet in page), key=int),
            "oldest_id": min((tweet["id"] for tweet in page), key=int),
        }
        if number + 1 < len(pages):
            meta["next_token"] = f"{TOKEN_PREFIX}{number + 1}"
        return {"data": page, "meta": meta}

    def _record_and_check(self, request: web.Request) -> web.Response | None:
        self.requests.append((request.path, dict(request.query)))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._json(_answer("unauthorized"), status=401)
        return None

    def _json(self, answer: dict[str, Any], status: int = 200) -> web.Response:
        return web.json_response(answer, status=status, headers=self.headers)

    async def _misbehave(self, request: web.Request, mode: str) -> web.StreamResponse:
        if mode == "429":
            return self._json(_answer("too_many_requests"), status=429)
        if mode == "403":
            return self._json(_answer("client_forbidden"), status=403)
        if mode == "402":
            problem = {
                "title": "CreditsDepleted",
                "detail": "Your enrolled account does not have any credits to fulfill this"
                " request.",
                "type": "https://api.twitter.com/2/problems/credits",
            }
            return self._json(problem, status=402)
        if mode == "401":
            return self._json(_answer("unauthorized"), status=401)
        if mode == "500":
            return web.Response(status=500, text="Internal Server Error")
        if mode == "503":
            return web.json_response(
                {"title": "Service Unavailable", "detail": "Service Unavailable"}, status=503
            )
        if mode == "html":
            return web.Response(
                text="<html><head><title>Over capacity</title></head><body>…</body></html>",
                content_type="text/html",
            )
        if mode == "malformed":
            return web.Response(text='{"data": [{"id": "2124', content_type="application/json")
        if mode == "array":
            return web.json_response([{"id": MORATORIUM}])
        if mode == "huge":
            # Chunked, without Content-Length: the size is only known by reading.
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            with contextlib.suppress(ConnectionError):
                for _ in range(20):
                    await response.write(b" " * (1024 * 1024))
                await response.write_eof()
            return response
        if mode == "stall":
            await self.stall()
        raise web.HTTPNotFound()

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/2/users/by/username/{name}", self._lookup)
        app.router.add_get("/2/users/{id}/tweets", self._timeline)


@pytest.fixture
async def xapi() -> AsyncIterator[FakeXApi]:
    async with FakeXApi() as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api(xapi: FakeXApi, clock: FakeClock) -> XApi:
    return XApi(TOKEN, base_url=xapi.base_url, clock=clock, timeout=5)


def _source(api: XApi, name: str = "@" + USERNAME, **options: Any) -> XSource:
    return XSource(name, api, once=True, now=lambda: NOW, options=XOptions(**options))


async def _feed(
    storage: Storage, source: XSource, fail_on: str | None = None, added_at: datetime = NOW
) -> RecordingFeed:
    """The real feed of a source first added at `added_at` (a later call keeps that time)."""
    source_id = await storage.ensure_source(source.spec.text, "x", added_at=added_at)
    matcher = Matcher(storage)
    await matcher.refresh()
    return RecordingFeed(storage, source_id, matcher, fail_on=fail_on)


async def _cursor(storage: Storage, name: str = USERNAME) -> dict[str, Any] | None:
    source_id = await storage.ensure_source(f"x:@{name}", "x")
    cursor = await storage.get_cursor(source_id)
    return None if cursor is None else dict(json.loads(cursor))


async def _poll(storage: Storage, source: XSource, fail_on: str | None = None) -> RecordingFeed:
    feed = await _feed(storage, source, fail_on)
    await source.run(feed)
    return feed


async def _caught_up_to(storage: Storage, source: XSource, since_id: str) -> None:
    """As if the account had been watched for long and read up to `since_id`."""
    feed = await _feed(storage, source, added_at=LONG_AGO)
    cursor = {"user_id": USER_ID, "username": USERNAME, "name": NAME, "since_id": since_id}
    await feed.advance(json.dumps(cursor))


async def _stored(storage: Storage, post_id: str) -> Post:
    stored = await storage.get_post("x", USERNAME, post_id)
    assert stored is not None, post_id
    return stored.post


# --- reading, the cursor and restarts --------------------------------------------------------


async def test_first_poll_looks_the_account_up_once_and_reads_one_page(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    source = _source(api, "@sokovnikolai")  # X usernames are case-insensitive
    assert source.spec.text == "x:@sokovnikolai"
    assert isinstance(source, PolledSource)
    assert source.host == "127.0.0.1"

    feed = await _poll(storage, source)
    assert feed.delivered == FIRST_PAGE  # what alerts is the feed's rule (tested below)
    assert xapi.requests == [
        ("/2/users/by/username/sokovnikolai", {}),
        (
            TIMELINE_PATH,
            {"max_results": "20", "tweet.fields": TWEET_FIELDS, "exclude": "replies,retweets"},
        ),
    ]
    assert await _cursor(storage, "sokovnikolai") == {
        "user_id": USER_ID,
        "username": USERNAME,  # as X spells it
        "name": NAME,
        "since_id": THREAD_1,
    }
    post = await _stored(storage, ORESHNIK_RANGE)
    assert (post.source, post.channel, post.post_id) == ("x", USERNAME, ORESHNIK_RANGE)
    assert post.channel_title == NAME
    assert post.url == f"https://x.com/SokovNikolai/status/{ORESHNIK_RANGE}"
    assert post.date == datetime(2026, 11, 20, 14, 30, 27, 712_000, tzinfo=UTC)
    assert post.text == (
        "Oreshnik range > 5,000 km? Estimates vary, but anything < 5,500 km is by definition "
        "intermediate range, exactly the class the INF Treaty banned."
    )


async def test_next_polls_ask_since_the_newest_and_a_restart_repeats_nothing(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    source = _source(api)
    await _poll(storage, source)
    xapi.upto = int(THREAD_3)
    feed = await _poll(storage, source)
    assert feed.delivered == [THREAD_2, KOROTKO, THREAD_3]
    assert xapi.timeline_requests()[-1] == {
        "max_results": "100",
        "tweet.fields": TWEET_FIELDS,
        "exclude": "replies,retweets",
        "since_id": THREAD_1,
    }

    # A new source object over the same store (a restart): no lookup, nothing again.
    restarted = _source(XApi(TOKEN, base_url=xapi.base_url))
    feed = await _poll(storage, restarted)
    assert feed.delivered == []
    assert xapi.timeline_requests()[-1]["since_id"] == THREAD_3
    assert xapi.lookups() == [LOOKUP_PATH]
    assert len(xapi.timeline_requests()) == 3
    assert await storage.count_posts() == len(FIRST_PAGE) + 3
    assert (await _cursor(storage) or {})["since_id"] == THREAD_3


async def test_posts_are_stored_as_a_reader_sees_them(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    xapi.upto = int(THREAD_3)
    source = _source(api)
    await _caught_up_to(storage, source, MORATORIUM)
    feed = await _poll(storage, source)
    assert feed.delivered == OWN[1:]

    # t.co links become what they stand for; X's &amp; escapes are undone.
    assert (await _stored(storage, NEW_START)).text == (
        "New START expired on 5 February 2026 & nine months on there is still no follow-on "
        "framework. My piece for @BulletinAtomic on what a political freeze could look like: "
        "https://thebulletin.org/2026/11/after-new-start-a-political-freeze/"
    )
    # The link to the post's own photos is dropped; the photos are counted.
    photos = await _stored(storage, KAPUSTIN_YAR)
    assert photos.text == (
        "Satellite imagery of the Kapustin Yar test range, 19 November: two new launcher "
        "shelters next to the Oreshnik pad."
    )
    assert photos.media_count == 2
    # A quote keeps its own words and names the quoted post once, below them.
    quote = await _stored(storage, QUOTE)
    quoted = next(tweet for tweet in TIMELINE if tweet["id"] == QUOTE)["referenced_tweets"][0]
    assert quote.text == (
        "Worth reading in full. The key line: Moscow will not be the first to deploy INF-range "
        "systems in a region, unless US missiles arrive there first.\n\n"
        f"Quoting: https://x.com/i/status/{quoted['id']}"
    )
    assert quote.forwarded_from is None
    # A long post is stored whole, from its note tweet, with its links expanded.
    note = (await _stored(storage, LONG_NOTE)).text
    assert note.startswith("Что на самом деле изменилось после отказа от моратория")
    assert note.endswith("остаются только политические — и они слабеют.")
    assert len(note) > 1400  # X cuts `text` at 280 characters
    assert note.count("\n\n") == 7
    assert "https://mid.ru/ru/foreign_policy/news/2043917/" in note
    assert "t.co" not in note
    assert "…" not in note
    assert (await _stored(storage, MID_BELARUS)).text.startswith(
        "МИД России: размещение «Орешника» в Белоруссии"
    )
    assert (await _stored(storage, THREAD_2)).text.startswith("2/3: The 9M729 & Oreshnik")
    assert (await _stored(storage, THREAD_3)).text.endswith(
        "Details in the new SIPRI paper: "
        "https://www.sipri.org/publications/2026/inf-range-missiles-europe"
    )


async def test_new_posts_are_paged_through_and_delivered_oldest_first(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    xapi.upto = int(THREAD_3)
    source = _source(api, max_results=5)
    await _caught_up_to(storage, source, MORATORIUM)
    feed = await _poll(storage, source)
    assert feed.delivered == OWN[1:]  # 11 posts from three pages, in ascending id order
    tokens = [query.get("pagination_token") for query in xapi.timeline_requests()]
    assert tokens == [None, f"{TOKEN_PREFIX}1", f"{TOKEN_PREFIX}2"]
    assert {query["since_id"] for query in xapi.timeline_requests()} == {MORATORIUM}
    assert (await _cursor(storage) or {})["since_id"] == THREAD_3


async def test_paging_is_bounded_and_says_what_it_left_out(
    storage: Storage,
    xapi: FakeXApi,
    api: XApi,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(x, "MAX_PAGES_PER_POLL", 2)
    xapi.upto = int(THREAD_3)
    source = _source(api, max_results=5)
    await _caught_up_to(storage, source, MORATORIUM)
    with caplog.at_level(logging.WARNING, logger="bot.sources.x"):
        feed = await _poll(storage, source)
    assert len(xapi.timeline_requests()) == 2
    assert feed.delivered == OWN[2:]  # the ten newest; the oldest new post is beyond the cap
    assert caplog.messages == [
        f"x @SokovNikolai: more than 2 pages of new posts; older ones after {MORATORIUM} "
        "are not read"
    ]


async def test_overlapping_and_reordered_pages_store_each_post_once(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    xapi.upto = int(THREAD_3)
    xapi.overlap = xapi.oldest_page_first = True
    source = _source(api, max_results=5)
    await _caught_up_to(storage, source, MORATORIUM)
    feed = await _poll(storage, source)
    assert feed.delivered == OWN[1:]
    assert await storage.count_posts() == len(OWN) - 1


async def test_nothing_new_is_zero_posts_and_no_error(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    source = _source(api)
    await _caught_up_to(storage, source, THREAD_1)
    feed = await _feed(storage, source)
    async with aiohttp.ClientSession() as session:
        assert await source.poll(session, feed) == 0
    assert xapi.timeline_requests()[-1]["since_id"] == THREAD_1  # answered {"meta": …count 0}
    assert await storage.count_posts() == 0
    assert (await _cursor(storage) or {})["since_id"] == THREAD_1


async def test_poll_returns_how_many_new_posts(
    storage: Storage, xapi: FakeXApi, api: XApi, caplog: pytest.LogCaptureFixture
) -> None:
    source = _source(api)
    feed = await _feed(storage, source)
    with caplog.at_level(logging.INFO, logger="bot.sources.x"):
        async with aiohttp.ClientSession() as session:
            assert await source.poll(session, feed) == len(FIRST_PAGE)
    assert f"x @SokovNikolai: 9 new post(s), up to {THREAD_1}" in caplog.messages


# --- the first run ---------------------------------------------------------------------------


async def test_a_new_account_alerts_only_on_its_last_day_and_keeps_the_rest_searchable(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    await storage.upsert_subscriber(7, "analyst")
    await storage.add_subscription(7, "Oreshnik")
    await storage.upsert_subscriber(8, "treaty watcher")
    await storage.add_subscription(8, '"New START"')
    await _poll(storage, _source(api))  # added at NOW

    pending = await storage.pending_messages(datetime.now(UTC) + timedelta(minutes=1))
    alerted = {(message.chat_id, message.post.post.post_id) for message in pending if message.post}
    # «Орешник» (MORATORIY) and New START (NEW_START) were posted more than a day before the
    # account was added: old news, not alerted ...
    assert alerted == {
        (7, ORESHNIK_RANGE),
        (7, KAPUSTIN_YAR),
        (7, LONG_NOTE),
        (7, MID_BELARUS),
        (8, LONG_NOTE),
    }
    # ... but stored, so /search finds them.
    found = {stored.post.post_id for stored in await storage.search_posts(["START"])}
    assert NEW_START in found
    assert await storage.get_post("x", USERNAME, MORATORIY) is not None


async def test_an_account_added_after_a_quiet_spell_alerts_on_none_of_its_old_posts(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    await storage.upsert_subscriber(7, "analyst")
    await storage.add_subscription(7, "Oreshnik")
    source = _source(api)
    feed = await _feed(storage, source, added_at=NOW + timedelta(days=3))
    await source.run(feed)
    assert feed.delivered == FIRST_PAGE
    assert (await storage.outbox_counts())["pending"] == 0
    assert (await _cursor(storage) or {})["since_id"] == THREAD_1  # starts after the newest
    xapi.upto = int(THREAD_2)
    assert (await _poll(storage, source)).delivered == [THREAD_2]


async def test_an_account_without_posts_keeps_no_since_id(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    xapi.upto = 0
    source = _source(api)
    assert (await _poll(storage, source)).delivered == []
    assert await _cursor(storage) == {
        "user_id": USER_ID,
        "username": USERNAME,
        "name": NAME,
        "since_id": None,
    }
    xapi.upto = int(THREAD_1)
    assert (await _poll(storage, source)).delivered == FIRST_PAGE  # still a first run
    assert [query["max_results"] for query in xapi.timeline_requests()] == ["20", "20"]
    assert xapi.lookups() == [LOOKUP_PATH]


# --- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("replies", "reposts", "exclude", "extra"),
    [
        (False, False, "replies,retweets", []),
        (True, False, "retweets", [REPLY]),
        (False, True, "replies", [REPOST]),
        (True, True, None, [REPLY, REPOST]),
    ],
)
async def test_replies_and_reposts_only_when_asked(
    storage: Storage,
    xapi: FakeXApi,
    api: XApi,
    replies: bool,
    reposts: bool,
    exclude: str | None,
    extra: list[str],
) -> None:
    xapi.upto = int(THREAD_3)
    source = _source(api, include_replies=replies, include_reposts=reposts)
    await _caught_up_to(storage, source, MORATORIUM)
    feed = await _poll(storage, source)
    assert xapi.timeline_requests()[0].get("exclude") == exclude
    assert feed.delivered == sorted(OWN[1:] + extra, key=int)


async def test_a_repost_names_where_it_came_from(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    xapi.upto = int(THREAD_3)
    source = _source(api, include_reposts=True)
    await _caught_up_to(storage, source, LONG_NOTE)
    await _poll(storage, source)
    repost = await _stored(storage, REPOST)
    original = next(tweet for tweet in TIMELINE if tweet["id"] == REPOST)["referenced_tweets"]
    assert repost.forwarded_from == (
        f"@ArmsControlNow (https://x.com/ArmsControlNow/status/{original[0]['id']})"
    )
    assert repost.text.startswith("Fact sheet: where the US and Russia stand")
    assert "New START & what" in repost.text


def test_max_results_is_checked() -> None:
    for bad in (4, 101):
        with pytest.raises(ValueError, match="max_results must be 5–100"):
            XOptions(max_results=bad)


def test_usernames_are_checked() -> None:
    api = XApi(TOKEN)
    assert XSource("@SokovNikolai", api).spec.text == "x:@SokovNikolai"
    assert XSource("_a", api).username == "_a"
    for bad in ("", "@", "a" * 16, "Sokov Nikolai", "x.com/SokovNikolai", "@@name", "имя"):
        with pytest.raises(ValueError, match="is not an X username"):
            XSource(bad, api)


def test_a_tweet_without_extras_becomes_a_plain_post() -> None:
    post = tweet_to_post({"id": "2124098148594835924", "text": "INF &amp; New START"}, "u", NOW)
    assert (post.text, post.date, post.url) == (
        "INF & New START",
        NOW,
        "https://x.com/u/status/2124098148594835924",
    )
    with pytest.raises(ValueError, match="usable id"):
        tweet_to_post({"text": "no id"}, "u", NOW)


# --- rate limits -----------------------------------------------------------------------------


async def test_429_waits_until_the_reset_without_asking_again(
    storage: Storage, xapi: FakeXApi, api: XApi, clock: FakeClock
) -> None:
    source = _source(api)
    await _poll(storage, source)
    xapi.upto = int(THREAD_3)
    reset = int(clock.now) + 90
    xapi.tweets = "429"
    xapi.headers = {
        "x-rate-limit-limit": "1500",
        "x-rate-limit-remaining": "0",
        "x-rate-limit-reset": str(reset),
    }
    with pytest.raises(RetryLater) as raised:
        await _poll(storage, source)
    assert raised.value.delay == pytest.approx(90)
    assert str(raised.value) == "X API rate limit for users/tweets reached; resets at 12:01 UTC"
    asked = len(xapi.requests)

    clock.now += 30
    with pytest.raises(RetryLater) as raised:
        await _poll(storage, source)
    assert raised.value.delay == pytest.approx(60)
    assert len(xapi.requests) == asked  # not asked: the answer is known

    # Other endpoints have their own budget: another account can still be looked up.
    with pytest.raises(XAccountGone):
        await _poll(storage, _source(api, "no_such_expert"))
    assert len(xapi.requests) == asked + 1

    clock.now = reset + 1
    xapi.tweets, xapi.headers = "ok", {}
    assert (await _poll(storage, source)).delivered == [THREAD_2, KOROTKO, THREAD_3]
    assert xapi.lookups() == [LOOKUP_PATH, "/2/users/by/username/no_such_expert"]


async def test_a_spent_budget_on_a_good_answer_blocks_the_next_request(
    storage: Storage, xapi: FakeXApi, api: XApi, clock: FakeClock
) -> None:
    source = _source(api)
    xapi.headers = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(clock.now) + 45)}
    assert (await _poll(storage, source)).delivered == FIRST_PAGE
    asked = len(xapi.requests)
    with pytest.raises(RetryLater) as raised:
        await _poll(storage, source)
    assert raised.value.delay == pytest.approx(45)
    assert len(xapi.requests) == asked
    clock.now += 46
    assert (await _poll(storage, source)).delivered == []
    assert len(xapi.requests) == asked + 1


@pytest.mark.parametrize(
    ("headers", "delay"),
    [
        ({}, 15 * 60),  # no reset header: a whole 15-minute window
        # The 24-hour cap, not the 15-minute window, is what ran out.
        (
            {
                "x-rate-limit-remaining": "12",
                "x-rate-limit-reset": "+60",
                "x-app-limit-24hour-remaining": "0",
                "x-app-limit-24hour-reset": "+18000",
            },
            18000,
        ),
        ({"x-rate-limit-remaining": "0", "x-rate-limit-reset": "-5"}, 60),  # clocks disagree
    ],
    ids=["no-header", "24-hour-cap", "reset-passed"],
)
async def test_429_waits_for_the_limit_that_ran_out(
    storage: Storage,
    xapi: FakeXApi,
    api: XApi,
    clock: FakeClock,
    headers: dict[str, str],
    delay: float,
) -> None:
    xapi.lookup = "429"
    xapi.headers = {
        name: str(int(clock.now) + int(value)) if value[0] in "+-" else value
        for name, value in headers.items()
    }
    with pytest.raises(RetryLater, match="rate limit for users/by/username") as raised:
        await _poll(storage, _source(api))
    assert raised.value.delay == pytest.approx(delay)


# --- errors ----------------------------------------------------------------------------------


async def test_a_refused_token_stops_the_source_and_is_never_shown(
    storage: Storage, xapi: FakeXApi, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "AAAAAAAAAAAAAAAAAAAAAWrongTokenOfTheSameShape%3DrevokedRevokedRevoked"
    api = XApi(wrong, base_url=xapi.base_url)
    with caplog.at_level(logging.DEBUG), pytest.raises(XAuthError) as raised:
        await _poll(storage, _source(api))
    assert isinstance(raised.value, SourceStopped)
    assert str(raised.value) == "X API refused the token (HTTP 401): check X_BEARER_TOKEN"
    assert wrong not in caplog.text
    assert wrong not in repr(api)
    assert TOKEN not in repr(XApi(TOKEN))


async def test_an_app_without_access_is_told_why(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    xapi.lookup = "403"
    with pytest.raises(XAuthError) as raised:
        await _poll(storage, _source(api))
    message = str(raised.value)
    assert message.startswith("X API refused access (HTTP 403): Client Forbidden — When")
    assert message.endswith("(client-not-enrolled)")
    assert "\n" not in message
    assert TOKEN not in message


async def test_used_up_credits_stop_the_source_loudly(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    xapi.lookup = "402"
    with pytest.raises(XAuthError, match=r"^X API credits are used up \(HTTP 402\): Credits"):
        await _poll(storage, _source(api))


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("no_such_expert", r"Could not find user with username: \[no_such_expert\]"),
        ("banned_analyst", r"User has been suspended: \[banned_analyst\]"),
    ],
)
async def test_an_account_that_is_gone_stops_the_source(
    storage: Storage, xapi: FakeXApi, api: XApi, name: str, reason: str
) -> None:
    with pytest.raises(XAccountGone, match=rf"^X account @{name} cannot be read: {reason}\.$"):
        await _poll(storage, _source(api, name))
    assert await _cursor(storage, name) is None
    assert xapi.timeline_requests() == []


async def test_an_account_suspended_later_stops_the_source(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    source = _source(api)
    await _poll(storage, source)
    xapi.tweets = "suspended"
    with pytest.raises(XAccountGone, match=rf"@SokovNikolai .*suspended: \[{USER_ID}\]"):
        await _poll(storage, source)
    assert (await _cursor(storage) or {})["since_id"] == THREAD_1


async def test_problems_alongside_posts_are_logged_and_the_posts_kept(
    storage: Storage, xapi: FakeXApi, api: XApi, caplog: pytest.LogCaptureFixture
) -> None:
    xapi.tweets = "partial"
    with caplog.at_level(logging.INFO, logger="bot.sources.x"):
        feed = await _poll(storage, _source(api))
    assert feed.delivered == FIRST_PAGE
    assert any("Could not find tweet with referenced_tweets.id" in m for m in caplog.messages)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("500", r"^X API users/tweets: HTTP 500$"),
        ("503", r"^X API users/tweets: HTTP 503: Service Unavailable — Service Unavailable$"),
        ("html", r"not a JSON object: HTTP 200, starts with '<html><head><title>Over capacity"),
        (
            "malformed",
            r"not a JSON object: HTTP 200, starts with '\{\"data\": \[\{\"id\": \"2124'$",
        ),
        ("array", r"not a JSON object"),
    ],
)
async def test_unusable_answers_are_clear_errors_and_change_nothing(
    storage: Storage, xapi: FakeXApi, api: XApi, mode: str, message: str
) -> None:
    source = _source(api)
    await _caught_up_to(storage, source, NEW_START)
    before = await _cursor(storage)
    xapi.tweets = mode
    with pytest.raises(XApiError, match=message):
        await _poll(storage, source)
    assert await storage.count_posts() == 0
    assert await _cursor(storage) == before


@pytest.mark.parametrize(
    ("mode", "message"),
    [("huge", "the answer is larger than 5242880 bytes"), ("stall", "no answer within 0.3 s")],
)
async def test_a_huge_or_missing_answer_is_a_fetch_error(
    storage: Storage, xapi: FakeXApi, clock: FakeClock, mode: str, message: str
) -> None:
    api = XApi(TOKEN, base_url=xapi.base_url, timeout=0.3, clock=clock)
    xapi.tweets = mode
    with pytest.raises(FetchError, match=f"^GET {xapi.base_url}{TIMELINE_PATH}: {message}"):
        await _poll(storage, _source(api))
    assert await storage.count_posts() == 0


# --- crashes and interruptions ---------------------------------------------------------------


async def test_a_crash_while_storing_loses_nothing_and_repeats_nothing(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    xapi.upto = int(THREAD_3)
    source = _source(api)
    await _caught_up_to(storage, source, MORATORIUM)
    crashed = await _feed(storage, source, fail_on=QUOTE)
    with pytest.raises(RuntimeError, match="simulated crash"):
        await source.run(crashed)
    assert crashed.delivered == [MORATORIY, NEW_START, ORESHNIK_RANGE, KAPUSTIN_YAR]
    assert (await _cursor(storage) or {})["since_id"] == KAPUSTIN_YAR

    feed = await _poll(storage, source)
    assert feed.delivered == [QUOTE, LONG_NOTE, MID_BELARUS, THREAD_1, THREAD_2, KOROTKO, THREAD_3]
    assert crashed.delivered + feed.delivered == OWN[1:]
    assert await storage.count_posts() == len(OWN) - 1


async def test_paging_that_fails_midway_delivers_nothing_until_it_succeeds(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    xapi.upto = int(THREAD_3)
    source = _source(api, max_results=5)
    await _caught_up_to(storage, source, MORATORIUM)
    xapi.tweets = "page2_500"
    with pytest.raises(XApiError, match="HTTP 500"):
        await _poll(storage, source)
    assert len(xapi.timeline_requests()) == 2
    assert await storage.count_posts() == 0
    assert (await _cursor(storage) or {})["since_id"] == MORATORIUM

    xapi.tweets = "ok"
    assert (await _poll(storage, source)).delivered == OWN[1:]
    assert xapi.timeline_requests()[2].get("since_id") == MORATORIUM


async def test_an_unreadable_cursor_means_a_fresh_lookup(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    source = _source(api)
    feed = await _feed(storage, source)
    await feed.advance('{"last_id": 1200}')
    await source.run(feed)
    assert feed.delivered == FIRST_PAGE
    assert xapi.lookups() == [LOOKUP_PATH]


# --- alerts ----------------------------------------------------------------------------------


async def test_a_matching_subscriber_gets_an_alert(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    await storage.upsert_subscriber(7, "analyst")
    await storage.add_subscription(7, "Oreshnik")
    await storage.upsert_subscriber(8, "treaty watcher")
    await storage.add_subscription(8, '"New START"')
    xapi.upto = int(THREAD_3)
    source = _source(api)
    await _caught_up_to(storage, source, MORATORIUM)
    await _poll(storage, source)

    pending = await storage.pending_messages(datetime.now(UTC) + timedelta(minutes=1))
    alerted = {(message.chat_id, message.post.post.post_id) for message in pending if message.post}
    # The real matcher reads both languages: «Орешник» is Oreshnik, ДСНВ is New START.
    assert alerted == {
        (7, MORATORIY),
        (7, ORESHNIK_RANGE),
        (7, KAPUSTIN_YAR),
        (7, LONG_NOTE),
        (7, MID_BELARUS),
        (7, THREAD_2),
        (8, NEW_START),
        (8, LONG_NOTE),
        (8, KOROTKO),
    }
    assert (await storage.outbox_counts())["pending"] == len(alerted)
    alert = next(message for message in pending if message.chat_id == 8)  # the oldest
    assert alert.post is not None
    assert alert.post.post.url == f"https://x.com/SokovNikolai/status/{NEW_START}"
    assert alert.queries == ('"New START"',)


# --- names and health ------------------------------------------------------------------------


async def test_posts_are_labelled_with_the_accounts_display_name(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    await _poll(storage, _source(api))
    stored = await storage.get_post("x", USERNAME, ORESHNIK_RANGE)
    assert stored is not None
    assert source_name(stored) == NAME
    (info,) = await storage.list_sources()
    assert info.title == NAME
    assert describe(EN, info, datetime.now(UTC)).startswith(f"{NAME} (x:@SokovNikolai) — ")


async def test_a_cursor_saved_before_names_were_kept_learns_the_name_once(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    source = _source(api)
    feed = await _feed(storage, source, added_at=LONG_AGO)
    await feed.advance(json.dumps({"user_id": USER_ID, "username": USERNAME, "since_id": QUOTE}))
    assert (await _poll(storage, source)).delivered == [LONG_NOTE, MID_BELARUS, THREAD_1]
    assert (await _stored(storage, LONG_NOTE)).channel_title == NAME
    assert xapi.timeline_requests()[0]["since_id"] == QUOTE  # its place was kept
    xapi.upto = int(THREAD_2)
    assert (await _poll(storage, source)).delivered == [THREAD_2]
    assert xapi.lookups() == [LOOKUP_PATH]


async def test_a_token_refused_after_the_lookup_shows_the_source_stopped_not_read_ok(
    storage: Storage, xapi: FakeXApi, api: XApi
) -> None:
    xapi.tweets = "401"  # the lookup works (and keeps the cursor); the timeline is refused
    source = XSource(USERNAME, api, now=lambda: NOW)
    feed = await _feed(storage, source)
    poller = Poller(start_spread=0.001)
    poller.add(source, feed)
    task = asyncio.create_task(poller.run())
    try:
        for _ in range(6000):
            infos = await storage.list_sources()
            if infos[0].failures:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    (info,) = await storage.list_sources()
    assert (await _cursor(storage) or {})["user_id"] == USER_ID
    now = datetime.now(UTC)
    line = describe(EN, info, now)
    assert "read OK" not in line.replace("never read OK", "")
    assert info.stopped_at is not None
    since = at(EN, info.stopped_at, now)
    assert f"stopped since {since}: XAuthError: X API refused the token (HTTP 401)" in line
    assert line.endswith("; never read OK")
    # Flagged at once, not after three failures.
    assert warning(EN, info, now) == (
        "stopped: XAuthError: X API refused the token (HTTP 401): check X_BEARER_TOKEN"
    )
