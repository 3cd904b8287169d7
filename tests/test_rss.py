"""The rss: source: real feedparser on saved feeds, polled from a loopback server into SQLite.

The documents in `tests/data/rss/` were written for this project in the shape of real feeds
(the sites are invented): `news.rss` (RSS 2.0 of a news site, five stories in Russian and
English, one with content:encoded, one with a script), `news-updated.rss` (the same stories
reordered and re-dated, one new story listed twice), `atom.xml`, `rdf.xml` (RSS 1.0),
`rss091.xml` (Netscape RSS 0.91, Latin-1, no dates), `noguid.rss` (entries keyed by link, and
one by title and date), `telegram.rss` and `x.rss` (as Telegram- and X-to-RSS bridges write
them), and two documents that are no feed: `page.html` and `malformed.xml`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from bot.delivery.render import source_name
from bot.domain import MAX_POST_CHARS
from bot.ingest import Matcher
from bot.sources.base import RetryLater, SourceStopped
from bot.sources.http import FetchError
from bot.sources.polling import PolledSource
from bot.sources.rss import (
    MAX_ENTRIES,
    MAX_SEEN,
    FeedError,
    FeedGone,
    RssSource,
    entry_id,
    parse_feed,
    retry_after,
)
from bot.storage import Storage
from tests.feeds import RecordingFeed
from tests.loopback import LoopbackServer

DATA = Path(__file__).parent / "data" / "rss"
NOW = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)  # the documents were "fetched" at this time
CHANNEL = "127.0.0.1"  # the loopback server's host
LAST_MODIFIED = "Thu, 26 Nov 2026 17:25:00 GMT"
MB = 1024 * 1024

# news.rss by guid, oldest first (15:05 +0300 is 12:05 UTC, before 12:40 GMT).
ISKANDER, MORATORIUM, ORESHNIK, NATO, NEW_START = (
    entry_id(f"dh-news-{n}") for n in (48161, 48177, 48207, 48190, 48213)
)
NEWS_IN_DATE_ORDER = [ISKANDER, MORATORIUM, ORESHNIK, NATO, NEW_START]
DARK_EAGLE = entry_id("dh-news-48230")  # the story news-updated.rss adds
NEWS_TITLE = "Оборонный вестник / Defence Herald"  # news.rss's own <title>
A_DAY_LATER = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # ISKANDER, MORATORIUM: over a day old


def _doc(name: str) -> bytes:
    return (DATA / name).read_bytes()


def _item(title: str, link: str, description: str, date: datetime | None = None) -> str:
    date_tag = f"<pubDate>{format_datetime(date, usegmt=True)}</pubDate>" if date else ""
    return (
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>{date_tag}"
        f"<description><![CDATA[{description}]]></description></item>"
    )


def _rss(*items: str, title: str = "Generated") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://gen.example/</link><description>d</description>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


# --- a stand-in feed host on loopback -------------------------------------------------------


@dataclass
class Document:
    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"


class FakeFeedSite(LoopbackServer):
    """Serves documents at /feeds/<name> with an ETag (answering 304 to a matching
    If-None-Match) and Last-Modified, error statuses by name, and hosts that misbehave."""

    def __init__(self) -> None:
        super().__init__()
        self.documents: dict[str, Document] = {}
        self.errors: dict[str, tuple[int, dict[str, str]]] = {}
        self.requests: list[tuple[str, CIMultiDict[str]]] = []

    def url(self, name: str) -> str:
        return f"{self.base_url}/feeds/{name}"

    def serve(self, name: str, body: bytes, content_type: str | None = None) -> None:
        self.documents[name] = Document(body, content_type or Document.content_type)

    def headers_of(self, name: str) -> list[CIMultiDict[str]]:
        return [headers for path, headers in self.requests if path == name]

    async def _feed(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.requests.append((name, CIMultiDict(request.headers)))
        if name in self.errors:
            status, headers = self.errors[name]
            return web.Response(status=status, headers=headers, text=f"HTTP {status}")
        if name == "slow":
            await self.stall()
        if name == "huge_declared":
            return web.Response(body=b" " * (20 * MB), content_type="application/rss+xml")
        if name == "huge_streamed":
            # Chunked, without Content-Length: the size is only known by reading.
            response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            with contextlib.suppress(ConnectionError):  # the reader hangs up at 5 MiB
                await response.write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
                for _ in range(20):
                    await response.write(b"<!--" + b"x" * MB + b"-->")
                await response.write_eof()
            return response
        document = self.documents.get(name)
        if document is None:
            raise web.HTTPNotFound()
        etag = '"' + hashlib.sha256(document.body).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=document.body,
            headers={
                "Content-Type": document.content_type,
                "ETag": etag,
                "Last-Modified": LAST_MODIFIED,
            },
        )

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/feeds/{name}", self._feed)


@pytest.fixture
async def site() -> AsyncIterator[FakeFeedSite]:
    async with FakeFeedSite() as server:
        yield server


def _source(
    site: FakeFeedSite, name: str, *, now: datetime = NOW, timeout: float = 5.0
) -> RssSource:
    return RssSource(site.url(name), once=True, timeout=timeout, now=lambda: now)


async def _feed(
    storage: Storage, source: RssSource, *, fail_on: str | None = None, added_at: datetime = NOW
) -> RecordingFeed:
    """The real feed of a source first added at `added_at` (a later call keeps that time)."""
    source_id = await storage.ensure_source(source.spec.text, "rss", added_at=added_at)
    matcher = Matcher(storage)
    await matcher.refresh()
    return RecordingFeed(storage, source_id, matcher, fail_on=fail_on)


async def _poll(
    storage: Storage,
    site: FakeFeedSite,
    name: str = "news",
    *,
    now: datetime = NOW,
    fetch_timeout: float = 5.0,
    fail_on: str | None = None,
    added_at: datetime = NOW,
) -> RecordingFeed:
    """One poll by a brand-new source object, as after a restart."""
    source = _source(site, name, now=now, timeout=fetch_timeout)
    feed = await _feed(storage, source, fail_on=fail_on, added_at=added_at)
    await source.run(feed)
    return feed


async def _cursor(storage: Storage, site: FakeFeedSite, name: str = "news") -> str | None:
    source_id = await storage.ensure_source(f"rss:{site.url(name)}", "rss")
    return await storage.get_cursor(source_id)


async def _seen(storage: Storage, site: FakeFeedSite, name: str = "news") -> list[str]:
    cursor = await _cursor(storage, site, name)
    assert cursor is not None
    seen: list[str] = json.loads(cursor)["seen"]
    return seen


async def _text(storage: Storage, post_id: str) -> str:
    stored = await storage.get_post("rss", CHANNEL, post_id)
    assert stored is not None
    return stored.post.text


# --- parsing saved documents ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "version", "count", "first_text"),
    [
        ("news.rss", "rss20", 5, "US and Russia hold expert consultations"),
        ("atom.xml", "atom10", 3, "Why the INF Treaty still matters\n\nSeven years after"),
        ("rdf.xml", "rss10", 3, "Пуск МБР «Ярс» с космодрома Плесецк\n\nБоевой блок"),
        ("rss091.xml", "rss091n", 3, "Aegis Ashore site in Poland declared operational"),
        ("noguid.rss", "rss20", 3, "Сармат: очередной испытательный пуск отложен"),
    ],
)
def test_every_format_parses(name: str, version: str, count: int, first_text: str) -> None:
    parsed = parse_feed(
        _doc(name), url="https://feeds.example/f", content_type="application/xml", now=NOW
    )
    assert (parsed.version, len(parsed.entries), parsed.problem) == (version, count, None)
    assert parsed.entries[0].text.startswith(first_text)
    assert all("<" not in entry.text for entry in parsed.entries)


def test_atom_html_titles_and_xhtml_content_become_plain_text() -> None:
    entries = parse_feed(
        _doc("atom.xml"), url="https://feeds.example/f", content_type=None, now=NOW
    ).entries
    assert entries[0].text == (
        "Why the INF Treaty still matters\n\n"
        "Seven years after the treaty's collapse, its on-site inspection regime is missed by"
        " both sides.\nSee the timeline."
    )
    assert entries[1].text == (
        "Sentinel ICBM: cost review finished\n\nThe Air Force finished its Nunn-McCurdy review"
        " of the Sentinel programme.\nSilos: new\nMissiles: 400"
    )
    assert entries[1].date == datetime(2026, 11, 26, 10, 30, tzinfo=UTC)  # updated, +01:00


def test_latin1_rss091_entities_are_decoded_and_undated_entries_have_no_date() -> None:
    entries = parse_feed(
        _doc("rss091.xml"), url="http://mdnotes.example/rss", content_type="text/xml", now=NOW
    ).entries
    assert entries[1].text.startswith("GBI interceptor count reaches 44 — café talk")
    assert {entry.date for entry in entries} == {None}
    assert entries[0].post_id == entry_id("http://mdnotes.example/notes/redzikowo.html")


def test_identity_is_guid_then_link_then_title_and_date() -> None:
    entries = parse_feed(
        _doc("noguid.rss"), url="https://feeds.example/f", content_type=None, now=NOW
    ).entries
    assert [entry.post_id for entry in entries] == [
        entry_id("https://poligon-chronicle.example/2026/11/26/sarmat"),
        entry_id("https://poligon-chronicle.example/2026/11/26/khabarovsk"),
        entry_id("Буревестник: NOTAM над Новой Землёй\nThu, 26 Nov 2026 10:05:00 +0000"),
    ]
    assert entries[2].url is None
    assert all(re.fullmatch(r"[0-9a-f]{24}", entry.post_id) for entry in entries)


def test_absurd_dates_are_dropped() -> None:
    body = _rss(
        _item("Old", "https://gen.example/1", "a", datetime(1970, 1, 2, tzinfo=UTC)),
        _item("Future", "https://gen.example/2", "b", NOW + timedelta(days=3)),
        _item("Soon", "https://gen.example/3", "c", NOW + timedelta(hours=2)),
    )
    entries = parse_feed(body, url="https://gen.example/rss", content_type=None, now=NOW).entries
    assert [entry.date for entry in entries] == [None, None, NOW + timedelta(hours=2)]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Thu, 26 Nov 2026 18:05:00 GMT", 300.0),
        ("Thu, 26 Nov 2026 17:00:00 GMT", 0.0),  # already past
        ("999999999", 86400.0),  # capped to a day
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert retry_after(value, NOW) == seconds


# --- polling a feed into storage ------------------------------------------------------------


async def test_a_news_feed_is_stored_once_in_date_order(
    storage: Storage, site: FakeFeedSite
) -> None:
    site.serve("news", _doc("news.rss"))
    feed = await _poll(storage, site)
    assert feed.delivered == NEWS_IN_DATE_ORDER
    assert await storage.count_posts() == 5

    stored = await storage.get_post("rss", CHANNEL, NEW_START)
    assert stored is not None
    post = stored.post
    assert post.text == (
        "US and Russia hold expert consultations on a New START follow-up\n\n"
        "Delegations met in Geneva for two days of expert-level talks on limits for strategic"
        " launchers after the expiry of New START.\n"
        "The full statement is on the State Department site"
        " (https://www.state.example/statements/geneva-2026)."
    )
    assert (
        post.url == "https://www.defence-herald.example/en/news/2026/11/26/new-start-consultations"
    )
    assert post.date == datetime(2026, 11, 26, 17, 20, tzinfo=UTC)
    assert post.forwarded_from is None

    # The longer content:encoded wins over the description; HTML becomes plain text.
    oreshnik = await _text(storage, ORESHNIK)
    assert oreshnik.startswith("«Орешник» заступил на боевое дежурство в Беларуси\n\nРакетный")
    assert "досье (https://www.defence-herald.example/dossier/oreshnik)" in oreshnik
    assert oreshnik.endswith("Пусковая установка (архив)")
    iskander = await _text(storage, ISKANDER)
    assert "track(" not in iskander  # the script is gone, not turned into text
    assert "<" not in iskander
    assert "9M729 deployments & launcher" in await _text(storage, NATO)

    cursor = json.loads(await _cursor(storage, site) or "")
    assert cursor["etag"].startswith('"')
    assert cursor["modified"] == LAST_MODIFIED
    assert sorted(cursor["seen"]) == sorted(NEWS_IN_DATE_ORDER)


@pytest.mark.parametrize(
    ("name", "content_type", "texts"),
    [
        (
            "atom.xml",
            "application/atom+xml",
            ["Тезисы: ядерные учения", "Sentinel ICBM", "Why the INF Treaty"],
        ),
        (
            "rdf.xml",
            "application/rdf+xml",
            ["NOTAM над Баренцевым морем", "CTBTO: no unusual", "Пуск МБР «Ярс»"],
        ),
        (
            "noguid.rss",
            "text/xml; charset=utf-8",
            ["Буревестник: NOTAM", "Посейдон: испытания", "Сармат: очередной"],
        ),
    ],
)
async def test_atom_rdf_and_feeds_without_guids_are_polled_alike(
    storage: Storage, site: FakeFeedSite, name: str, content_type: str, texts: list[str]
) -> None:
    site.serve(name, _doc(name), content_type)
    feed = await _poll(storage, site, name)
    assert len(feed.delivered) == 3
    stored = [await _text(storage, post_id) for post_id in feed.delivered]
    assert [text.startswith(start) for text, start in zip(stored, texts, strict=True)] == [
        True
    ] * 3
    assert (await _poll(storage, site, name)).delivered == []


async def test_an_undated_rss091_feed_delivers_only_what_appears_later(
    storage: Storage, site: FakeFeedSite
) -> None:
    body = _doc("rss091.xml")
    site.serve("old", body, "application/xml")
    # First run: no entry has a date, so none can be shown to be recent; all are seen.
    assert (await _poll(storage, site, "old")).delivered == []
    assert len(await _seen(storage, site, "old")) == 3
    new_item = (
        b"<item><title>THAAD battery moved to Guam</title>"
        b"<link>http://mdnotes.example/notes/thaad-guam.html</link>"
        b"<description>A second battery arrived this week.</description></item>\n    <item>"
    )
    site.serve("old", body.replace(b"<item>", new_item, 1), "application/xml")
    later = NOW + timedelta(hours=1)
    feed = await _poll(storage, site, "old", now=later)
    assert feed.delivered == [entry_id("http://mdnotes.example/notes/thaad-guam.html")]
    stored = await storage.get_post("rss", CHANNEL, feed.delivered[0])
    assert stored is not None
    assert stored.post.date == later  # undated: stored with the time it was read
    assert stored.post.url == "http://mdnotes.example/notes/thaad-guam.html"


async def test_conditional_requests_and_304(storage: Storage, site: FakeFeedSite) -> None:
    site.serve("news", _doc("news.rss"))
    await _poll(storage, site)
    cursor = await _cursor(storage, site)
    (first,) = site.headers_of("news")
    assert "If-None-Match" not in first
    assert "If-Modified-Since" not in first
    assert first["User-Agent"].startswith("Dozor/")
    assert "application/rss+xml" in first["Accept"]

    source = _source(site, "news")
    feed = await _feed(storage, source)
    async with aiohttp.ClientSession() as session:
        assert await source.poll(session, feed) == 0
    second = site.headers_of("news")[1]
    assert second["If-None-Match"] == json.loads(cursor or "")["etag"]
    assert second["If-Modified-Since"] == LAST_MODIFIED
    assert feed.delivered == []
    assert await storage.count_posts() == 5
    assert await _cursor(storage, site) == cursor


async def test_an_unchanged_feed_without_validators_stores_nothing_again(
    storage: Storage, site: FakeFeedSite
) -> None:
    # A server that ignores If-None-Match: the same document again is all "seen".
    site.serve("news", _doc("news.rss"))
    await _poll(storage, site)
    site.serve("news", _doc("news.rss") + b"\n")  # another ETag, the same entries
    source = _source(site, "news")
    feed = await _feed(storage, source)
    async with aiohttp.ClientSession() as session:
        assert await source.poll(session, feed) == 0
    assert feed.delivered == []
    assert await storage.count_posts() == 5


@pytest.mark.parametrize(
    ("status", "header", "delay"),
    [(429, "120", 120.0), (503, "Thu, 26 Nov 2026 18:05:00 GMT", 300.0)],
)
async def test_rate_limits_ask_to_retry_later(
    storage: Storage, site: FakeFeedSite, status: int, header: str, delay: float
) -> None:
    site.errors["busy"] = (status, {"Retry-After": header})
    with pytest.raises(RetryLater, match=f"HTTP {status}") as raised:
        await _poll(storage, site, "busy")
    assert raised.value.delay == pytest.approx(delay)
    assert await storage.count_posts() == 0


@pytest.mark.parametrize(("status", "headers"), [(429, {}), (503, {"Retry-After": "later"})])
async def test_a_rate_limit_without_a_usable_wait_is_an_ordinary_error(
    storage: Storage, site: FakeFeedSite, status: int, headers: dict[str, str]
) -> None:
    site.errors["busy"] = (status, headers)
    with pytest.raises(FeedError, match=f"HTTP {status}") as raised:
        await _poll(storage, site, "busy")
    assert not isinstance(raised.value, SourceStopped)


@pytest.mark.parametrize("status", [401, 403, 404, 410])
async def test_a_missing_or_forbidden_feed_stops_the_source(
    storage: Storage, site: FakeFeedSite, status: int
) -> None:
    site.errors["gone"] = (status, {})
    with pytest.raises(FeedGone, match=f"HTTP {status}: ") as raised:
        await _poll(storage, site, "gone")
    assert isinstance(raised.value, SourceStopped)
    assert isinstance(raised.value, FeedError)
    assert await storage.count_posts() == 0
    assert await _cursor(storage, site, "gone") is None


async def test_404_message(storage: Storage, site: FakeFeedSite) -> None:
    with pytest.raises(FeedGone) as raised:
        await _poll(storage, site, "no_such_feed")
    assert str(raised.value) == (
        f"GET {site.url('no_such_feed')}: HTTP 404: the feed is gone; check the address"
    )


async def test_a_server_error_is_an_ordinary_error(storage: Storage, site: FakeFeedSite) -> None:
    site.errors["broken"] = (500, {})
    with pytest.raises(FeedError, match=r"HTTP 500$") as raised:
        await _poll(storage, site, "broken")
    assert not isinstance(raised.value, SourceStopped)


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (_doc("malformed.xml"), "application/rss+xml", "mismatched tag at line 7"),
        (_doc("page.html"), "text/html; charset=utf-8", "mismatched tag"),
        (random.Random(7).randbytes(4096), "application/octet-stream", ""),
        (b"", "application/rss+xml", ""),
        (b'{"items": []}', "application/json", ""),
        (b"<?xml version='1.0'?><html><body><p>hi</p></body></html>", "text/xml", "no feed"),
    ],
    ids=["malformed", "html_page", "random_bytes", "empty", "json", "other_xml"],
)
async def test_a_document_that_is_no_feed_stores_nothing_and_keeps_the_cursor(
    storage: Storage, site: FakeFeedSite, body: bytes, content_type: str, reason: str
) -> None:
    site.serve("news", _doc("news.rss"))
    await _poll(storage, site)
    cursor = await _cursor(storage, site)
    site.serve("news", body, content_type)
    with pytest.raises(FeedError, match="is not an RSS or Atom feed: " + re.escape(reason)):
        await _poll(storage, site)
    assert await _cursor(storage, site) == cursor
    assert await storage.count_posts() == 5

    site.serve("fresh", body, content_type)  # and on a first run: no cursor is written
    with pytest.raises(FeedError):
        await _poll(storage, site, "fresh")
    assert await _cursor(storage, site, "fresh") is None


async def test_a_feed_that_is_not_well_formed_but_has_entries_is_read(
    storage: Storage, site: FakeFeedSite, caplog: pytest.LogCaptureFixture
) -> None:
    truncated = _doc("news.rss").replace(b"  </channel>\n</rss>\n", b"")
    truncated = truncated.replace(b"<ttl>10</ttl>", b"<ttl>10</tll>")
    site.serve("news", truncated)
    with caplog.at_level(logging.WARNING, logger="bot.sources.rss"):
        feed = await _poll(storage, site)
    assert feed.delivered == NEWS_IN_DATE_ORDER
    warnings = [r.getMessage() for r in caplog.records if "not well-formed" in r.getMessage()]
    assert len(warnings) == 1
    assert "mismatched tag" in warnings[0]


@pytest.mark.parametrize("name", ["huge_declared", "huge_streamed"])
async def test_a_body_over_the_limit_is_refused(
    storage: Storage, site: FakeFeedSite, name: str
) -> None:
    with pytest.raises(FetchError, match="larger than 5242880 bytes"):
        await _poll(storage, site, name)
    assert await storage.count_posts() == 0
    assert await _cursor(storage, site, name) is None


async def test_a_server_that_never_answers(storage: Storage, site: FakeFeedSite) -> None:
    with pytest.raises(FetchError, match=r"no answer within 0\.3 s"):
        await _poll(storage, site, "slow", fetch_timeout=0.3)
    assert await storage.count_posts() == 0


async def test_duplicates_reordering_and_redating_deliver_nothing_twice(
    storage: Storage, site: FakeFeedSite
) -> None:
    site.serve("updated", _doc("news-updated.rss"))
    feed = await _poll(storage, site, "updated")
    assert sorted(feed.delivered) == sorted([*NEWS_IN_DATE_ORDER, DARK_EAGLE])  # once each
    assert feed.delivered[-1] == DARK_EAGLE
    assert await storage.count_posts() == 6

    site.serve("news", _doc("news.rss"))
    await _poll(storage, site)
    site.serve("news", _doc("news-updated.rss"))
    feed = await _poll(storage, site)
    assert feed.delivered == [DARK_EAGLE]
    assert await storage.count_posts() == 6
    assert (await _seen(storage, site))[:6] == [
        DARK_EAGLE,
        NATO,
        ISKANDER,
        NEW_START,
        MORATORIUM,
        ORESHNIK,
    ]


async def test_a_restart_between_polls_repeats_nothing(
    storage: Storage, site: FakeFeedSite
) -> None:
    await storage.upsert_subscriber(7, "analyst")
    await storage.add_subscription(7, "Орешник")
    site.serve("news", _doc("news.rss"))
    await _poll(storage, site)
    alerts = await storage.outbox_counts()
    assert alerts["pending"] == 1

    site.serve("news", _doc("news-updated.rss"))
    feed = await _poll(storage, site, now=NOW + timedelta(hours=1))  # a new source and feed
    assert feed.delivered == [DARK_EAGLE]
    assert await storage.count_posts() == 6
    assert await storage.outbox_counts() == alerts


async def test_a_crash_while_storing_loses_nothing_and_repeats_nothing(
    storage: Storage, site: FakeFeedSite
) -> None:
    site.serve("news", _doc("news.rss"))
    crashed = await _feed(storage, _source(site, "news"), fail_on=ORESHNIK)
    with pytest.raises(RuntimeError, match="simulated crash"):
        await _source(site, "news").run(crashed)
    assert crashed.delivered == [ISKANDER, MORATORIUM]

    # The cursor saved with the last stored entry keeps the old validators: a 304 for the
    # new ETag would otherwise hide the three entries not yet stored.
    feed = await _poll(storage, site)
    assert feed.delivered == [ORESHNIK, NATO, NEW_START]
    assert await storage.count_posts() == 5
    assert (await _poll(storage, site)).delivered == []
    assert site.headers_of("news")[-1].get("If-None-Match") is not None


async def _subscribe_to_news(storage: Storage) -> None:
    """A subscriber for an old story (ISKANDER) and for two of the last day's."""
    await storage.upsert_subscriber(7, "analyst")
    for query in ("Искандер", "Орешник", "9M729"):
        await storage.add_subscription(7, query)


async def _alerted(storage: Storage) -> set[str]:
    pending = await storage.pending_messages(datetime.now(UTC) + timedelta(days=1))
    return {message.post.post.post_id for message in pending if message.post}


async def test_a_new_feed_alerts_only_on_its_last_day_and_keeps_the_archive_searchable(
    storage: Storage, site: FakeFeedSite
) -> None:
    await _subscribe_to_news(storage)
    site.serve("news", _doc("news.rss"))
    feed = await _poll(storage, site, now=A_DAY_LATER, added_at=A_DAY_LATER)
    assert feed.delivered == NEWS_IN_DATE_ORDER  # all stored ...
    assert await _alerted(storage) == {ORESHNIK, NATO}  # ... ISKANDER is old news
    found = await storage.search_posts(["Искандер"])
    assert [stored.post.post_id for stored in found] == [ISKANDER]

    site.serve("news", _doc("news-updated.rss"))
    feed = await _poll(storage, site, now=A_DAY_LATER, added_at=A_DAY_LATER)
    assert feed.delivered == [DARK_EAGLE]  # the old ones are not delivered again
    assert await _alerted(storage) == {ORESHNIK, NATO}


async def test_a_feed_watched_for_long_alerts_on_everything_it_missed(
    storage: Storage, site: FakeFeedSite
) -> None:
    # Added long ago, read before the stories were published, then down for a day.
    await _subscribe_to_news(storage)
    site.serve("news", _doc("rss091.xml"), "application/xml")
    await _poll(storage, site, added_at=NOW - timedelta(days=30))
    site.serve("news", _doc("news.rss"))
    await _poll(storage, site, now=A_DAY_LATER + timedelta(days=1))
    assert await _alerted(storage) == {ISKANDER, ORESHNIK, NATO}


async def test_a_crash_on_the_first_run_loses_nothing_and_releases_no_old_alert(
    storage: Storage, site: FakeFeedSite
) -> None:
    await _subscribe_to_news(storage)
    site.serve("news", _doc("news.rss"))
    source = _source(site, "news", now=A_DAY_LATER)
    crashed = await _feed(storage, source, fail_on=NATO, added_at=A_DAY_LATER)
    with pytest.raises(RuntimeError):
        await source.run(crashed)
    assert crashed.delivered == [ISKANDER, MORATORIUM, ORESHNIK]
    feed = await _poll(storage, site, now=A_DAY_LATER)
    assert feed.delivered == [NATO, NEW_START]
    assert await storage.count_posts() == 5
    assert await _alerted(storage) == {ORESHNIK, NATO}


async def test_an_unreadable_cursor_means_a_first_run(
    storage: Storage, site: FakeFeedSite, caplog: pytest.LogCaptureFixture
) -> None:
    site.serve("news", _doc("news.rss"))
    source = _source(site, "news", now=A_DAY_LATER)
    feed = await _feed(storage, source)
    await feed.advance("not json")
    with caplog.at_level(logging.WARNING, logger="bot.sources.rss"):
        await source.run(feed)
    assert feed.delivered == NEWS_IN_DATE_ORDER
    assert any("unreadable" in r.getMessage() for r in caplog.records)


async def test_seen_ids_are_capped_keeping_the_latest_document(
    storage: Storage, site: FakeFeedSite
) -> None:
    site.serve("news", _doc("news.rss"))
    source = _source(site, "news")
    feed = await _feed(storage, source)
    older = [f"{n:024x}" for n in range(MAX_SEEN)]
    await feed.advance(json.dumps({"etag": None, "modified": None, "seen": older}))
    await source.run(feed)
    assert feed.delivered == NEWS_IN_DATE_ORDER  # not a first run: all five are new
    seen = await _seen(storage, site)
    assert len(seen) == MAX_SEEN
    assert seen[:5] == [NEW_START, ORESHNIK, NATO, MORATORIUM, ISKANDER]  # document order
    assert seen[5:] == older[: MAX_SEEN - 5]


async def test_a_huge_document_is_read_up_to_the_entry_limit(
    storage: Storage, site: FakeFeedSite, caplog: pytest.LogCaptureFixture
) -> None:
    items = [
        _item(f"Сводка №{n}", f"https://gen.example/{n}", "текст", NOW - timedelta(minutes=n))
        for n in range(MAX_ENTRIES + 100)
    ]
    site.serve("big", _rss(*items))
    with caplog.at_level(logging.WARNING, logger="bot.sources.rss"):
        feed = await _poll(storage, site, "big")
    assert len(feed.delivered) == MAX_ENTRIES
    assert await storage.count_posts() == MAX_ENTRIES
    seen = await _seen(storage, site, "big")
    assert seen == [entry_id(f"https://gen.example/{n}") for n in range(MAX_ENTRIES)]
    assert any(f"only the first {MAX_ENTRIES}" in r.getMessage() for r in caplog.records)


async def test_hostile_entries_are_stored_as_bounded_plain_text(
    storage: Storage, site: FakeFeedSite
) -> None:
    nested = "<div><b><i><span>" * 100 + "глубоко" + "</span></i></b></div>" * 100
    odd = (
        "Zero\u200bwidth\ufeff, RTL \u200fשלום\u200f, emoji 🚀🇷🇺, combining е\u0301, "
        "<style>p{color:red}</style><script>alert('x')</script><img src=x onerror=alert(1)>"
        "<iframe src='https://evil.example'></iframe><a href='javascript:alert(1)'>click</a>"
    )
    start = odd + nested + "<p>"
    filler = ("Ракета средней дальности. " * 400)[: 10_000 - len(start) - len("</p>")]
    description = start + filler + "</p>"
    assert len(description) == 10_000
    huge = "слово " * 30_000  # 180,000 characters: more than a post may hold
    site.serve(
        "hostile",
        _rss(
            _item("<b>Заголовок</b> &amp; «кавычки»", "https://gen.example/h", description, NOW),
            _item("Огромная запись", "javascript:alert(1)", huge, NOW),
        ),
    )
    feed = await _poll(storage, site, "hostile")
    assert len(feed.delivered) == 2
    text = await _text(storage, entry_id("https://gen.example/h"))
    assert text.startswith("Заголовок & «кавычки»\n\nZerowidth, RTL \u200fשלום\u200f")
    assert "🚀🇷🇺" in text
    assert "е́" in text  # NFC keeps the combining accent on a letter without a composed form
    assert "глубоко\nРакета средней дальности. Ракета" in text
    assert not re.search(r"<[a-zA-Z/!]", text)
    for gone in ("alert", "color:red", "\u200b", "\ufeff", "evil.example", "javascript"):
        assert gone not in text
    long_post = await storage.get_post("rss", CHANNEL, entry_id("javascript:alert(1)"))
    assert long_post is not None
    assert len(long_post.post.text) == MAX_POST_CHARS
    assert long_post.post.url is None  # only http(s) links are kept


async def test_telegram_and_x_bridge_feeds_work_like_any_feed(
    storage: Storage, site: FakeFeedSite
) -> None:
    site.serve("telegram", _doc("telegram.rss"))
    site.serve("x", _doc("x.rss"))
    telegram = await _poll(storage, site, "telegram")
    assert telegram.delivered == [
        entry_id(f"https://t.me/polygon_svodka/{n}") for n in (1219, 1220, 1221)
    ]
    alert = await storage.get_post("rss", CHANNEL, telegram.delivered[-1])
    assert alert is not None
    assert alert.post.url == "https://t.me/polygon_svodka/1221"
    # The title is the post's first line cut with "…": it is not repeated above the text.
    assert alert.post.text == (
        "🚨 Ракетная опасность в Белгородской области. Всем пройти в укрытия!\n"
        "Подробности у @raketa_monitor #ПВО"
    )

    x = await _poll(storage, site, "x")
    first, reply = (
        entry_id(f"https://x.com/SokovNikolai/status/186150000000000000{n}") for n in (1, 2)
    )
    assert x.delivered == [first, reply]
    assert await _text(storage, first) == (
        "Moscow's statement on the INF moratorium changes little in practice: #Oreshnik was"
        " never covered by it. Thread below."
    )
    assert await _text(storage, reply) == (
        "R to @SokovNikolai: The second point is about verification.\n\n"
        "The second point is about verification. Without on-site inspections, see"
        " https://observatory.example/analysis/inf-still-matters"
    )
    stored = await storage.get_post("rss", CHANNEL, reply)
    assert stored is not None
    assert stored.post.url == "https://x.com/SokovNikolai/status/1861500000000000002"


async def test_a_matching_entry_queues_an_alert(storage: Storage, site: FakeFeedSite) -> None:
    await storage.upsert_subscriber(7, "analyst")
    await storage.add_subscription(7, "Орешник")
    await storage.add_subscription(7, "9M729")
    site.serve("news", _doc("news.rss"))
    await _poll(storage, site)
    assert (await storage.outbox_counts())["pending"] == 2
    pending = await storage.pending_messages(datetime.now(UTC) + timedelta(days=1))
    assert len(pending) == 2


async def test_keeps_polling_until_cancelled(storage: Storage, site: FakeFeedSite) -> None:
    site.serve("news", _doc("news.rss"))
    source = RssSource(site.url("news"), interval=0.05, now=lambda: NOW)
    feed = await _feed(storage, source)
    task = asyncio.create_task(source.run(feed))
    try:
        for _ in range(2400):
            if len(feed.delivered) == 5:
                break
            await asyncio.sleep(0.025)
        site.serve("news", _doc("news-updated.rss"))
        for _ in range(2400):
            if DARK_EAGLE in feed.delivered:
                break
            await asyncio.sleep(0.025)
        assert feed.delivered == [*NEWS_IN_DATE_ORDER, DARK_EAGLE]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# --- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x",
        "not a url",
        "",
        "http://",
        "https:///rss.xml",
        "file:///etc/passwd",
        "http://[::1",
    ],
)
def test_only_http_addresses_are_feeds(url: str) -> None:
    with pytest.raises(ValueError, match="is not a feed address: expected an http"):
        RssSource(url)


def test_a_source_names_its_host_and_channel() -> None:
    source = RssSource(" https://www.themoscowtimes.com/rss/news ")
    assert source.spec.text == "rss:https://www.themoscowtimes.com/rss/news"
    assert source.host == "www.themoscowtimes.com"
    assert source.channel == "themoscowtimes.com"
    assert source.interval == 600.0
    assert isinstance(source, PolledSource)
    with pytest.raises(ValueError, match="positive"):
        RssSource("https://feeds.example/rss", interval=0)


# --- names and problems ----------------------------------------------------------------------


async def test_entries_are_labelled_with_the_feeds_title(
    storage: Storage, site: FakeFeedSite
) -> None:
    site.serve("news", _doc("news.rss"))
    await _poll(storage, site)
    stored = await storage.get_post("rss", CHANNEL, NEW_START)
    assert stored is not None
    assert stored.post.channel_title == NEWS_TITLE
    assert source_name(stored) == NEWS_TITLE
    (info,) = await storage.list_sources()
    assert info.title == NEWS_TITLE


async def test_two_alert_feeds_of_one_host_are_told_apart(
    storage: Storage, site: FakeFeedSite
) -> None:
    # Two Google Alerts feeds: one host (one channel key), two names.
    for number, topic in ((1, "Oreshnik"), (2, "INF <Treaty> &amp; more")):
        item = _item(topic, f"https://gen.example/{number}", f"About {topic}", NOW)
        site.serve(f"alert{number}", _rss(item, title=f"Google Alert - {topic}"))
        await _poll(storage, site, f"alert{number}")
    labels = set()
    for number in (1, 2):
        stored = await storage.get_post("rss", CHANNEL, entry_id(f"https://gen.example/{number}"))
        assert stored is not None
        labels.add(source_name(stored))
    assert labels == {"Google Alert - Oreshnik", "Google Alert - INF & more"}


@pytest.mark.parametrize(
    ("title", "shown"),
    [
        ("  Defence\n\tHerald\u200b  ", "Defence Herald"),
        ("<b>Bold</b> &amp; <script>x()</script>brave", "Bold & brave"),
        ("Я" * 500, "Я" * 200),
        ("   ", None),
    ],
)
def test_a_feed_title_is_cleaned_to_one_bounded_line(title: str, shown: str | None) -> None:
    item = _item("t", "https://gen.example/1", "d", NOW)
    body = _rss(item, title=f"<![CDATA[{title}]]>")
    assert parse_feed(body, url="https://gen.example/", content_type=None, now=NOW).title == shown


async def test_a_malformed_feed_is_logged_once_per_problem(
    storage: Storage, site: FakeFeedSite, caplog: pytest.LogCaptureFixture
) -> None:
    source = _source(site, "news")
    feed = await _feed(storage, source)
    broken = _doc("news.rss").replace(b"<ttl>10</ttl>", b"<ttl>10</tll>")
    other = _doc("news.rss").replace(b"&amp;", b"&nbsp;", 1)

    async def poll(body: bytes) -> list[str]:
        site.serve("news", body)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="bot.sources.rss"):
            await source.run(feed)
        return [r.getMessage() for r in caplog.records if "well-formed" in r.getMessage()]

    assert len(await poll(broken)) == 1
    # The same problem on every poll, though new entries move it down the document.
    for number in range(3):
        item = _item(f"N{number}", f"https://gen.example/{number}", "d", NOW).encode()
        grown = broken.replace(b"<item>", item + b"\n<item>", 1)
        broken = grown.replace(b"<channel>", b"<channel>\n", 1)
        assert await poll(broken) == []
    (changed,) = await poll(other)
    assert "(undefined entity at line 32)" in changed
    assert await poll(_doc("news.rss")) == [
        f"rss {site.url('news')}: the feed is well-formed again"
    ]
    assert len(await poll(broken)) == 1
