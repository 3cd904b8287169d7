"""The t.me/s web-preview source: the parser on saved pages, the poller against a loopback server.

The saved pages in `tests/data/tgweb/` were written for this project in the structure of real
`t.me/s/<channel>` pages (a fictional channel, @polygon_svodka): `older.html` (ids 1161–1180),
`latest.html` (1181–1200), `odd.html` (1201–1218: an album, a poll, service messages, forwards,
an edit, links and emoji, a ~4,000-character post, escaped HTML, a reply, a video, a document),
and `nopreview.html` (the plain `t.me/<name>` card Telegram redirects to without a preview).
The stand-in server cuts the three history pages into messages and serves them in windows of 20
with `?before=`, as Telegram does, so paging is exercised on the same markup.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from bot.delivery.render import source_name
from bot.domain import Post
from bot.ingest import Ingest, Matcher, SourceFeed
from bot.sources import tgweb
from bot.sources.tgweb import (
    FetchError,
    NoPreviewError,
    PageFormatError,
    ParsedPage,
    TgWebSource,
    parse_page,
    parse_views,
)
from bot.storage import Storage
from tests.loopback import LoopbackServer

DATA = Path(__file__).parent / "data" / "tgweb"
CHANNEL = "polygon_svodka"
TITLE = "Полигон | Сводка"  # the channel's name on its preview pages
# When the test channel began to be watched: before its saved history, unless a test says.
ADDED = datetime(2026, 11, 18, tzinfo=UTC)
CLOSED = "zakryty_kanal"
PAGE_SIZE = 20
WRAP = '<div class="tgme_widget_message_wrap js-widget_message_wrap">'
HISTORY_END = "        </section>"


def _page(name: str) -> str:
    return (DATA / f"{name}.html").read_text(encoding="utf-8")


def _parsed(name: str) -> ParsedPage:
    return parse_page(_page(name), CHANNEL)


def _by_id(page: ParsedPage) -> dict[int, tgweb.WebPost]:
    return {post.id: post for post in page.posts}


# --- the parser on saved pages -------------------------------------------------------------


def test_normal_page_posts_oldest_first_with_dates_and_views() -> None:
    page = _parsed("latest")
    assert page.has_preview
    assert [post.id for post in page.posts] == list(range(1181, 1201))
    posts = _by_id(page)
    assert posts[1181].date == datetime(2026, 11, 20, 5, 40, tzinfo=UTC)
    assert posts[1181].text == "Утренняя сводка: ПВО сбила 9 БПЛА над Белгородской областью."
    assert posts[1195].views == 2500  # "2.5K"
    assert posts[1193].views == 1_200_000  # "1.2M"
    assert posts[1189].views == 987
    assert posts[1189].media_count == 1
    # <br> become newlines; <b> is dropped; emoji images become their characters.
    assert (
        posts[1200].text
        == "Итоги суток.\nСбито 31 БПЛА и 2 ракеты «Нептун».\n\n📌 Подробности утром."
    )
    assert posts[1182].text.startswith("🚨 Ракетная опасность")
    assert "👍" not in posts[1182].text  # reactions are not part of the post


def test_edited_is_read_from_the_meta_line_not_from_a_signature() -> None:
    posts = _by_id(_parsed("latest"))
    assert {post.id for post in posts.values() if post.edited} == {1184, 1198}
    assert not posts[1191].edited  # its signature reads "Edited by A. Orlov"


def test_older_page() -> None:
    page = _parsed("older")
    assert [post.id for post in page.posts] == list(range(1161, 1181))
    posts = _by_id(page)
    assert posts[1173].views == 9900
    assert posts[1161].text.startswith("Сводка на 06:00.\nЗа ночь")


def test_album_is_one_post_with_its_caption_and_four_photos() -> None:
    posts = _by_id(_parsed("odd"))
    album = posts[1202]
    assert album.media_count == 4
    assert album.text == (
        "Фото с полигона: четыре снимка пусковых установок, сделанные сегодня утром."
    )
    assert not {1203, 1204, 1205} & posts.keys()  # the other album ids exist only as links


def test_service_messages_are_skipped_but_their_ids_count() -> None:
    page = _parsed("odd")
    posts = _by_id(page)
    assert 1201 not in posts  # "Channel photo updated"
    assert 1218 not in posts  # "… pinned …"
    assert page.oldest_id == 1201
    assert page.newest_id == 1218
    assert not page.skipped


def test_poll_becomes_text() -> None:
    poll = _by_id(_parsed("odd"))[1206]
    assert poll.text == (
        "📊 Какая система, по-вашему, важнее всего для сдерживания?\n"
        "• «Орешник»\n"
        "• «Искандер-М»\n"
        "• Крылатые ракеты морского базирования\n"
        "• Затрудняюсь ответить"
    )


def test_forwarded_from_a_channel_and_from_a_hidden_user() -> None:
    posts = _by_id(_parsed("odd"))
    channel = posts[1207]
    assert (channel.forwarded_from, channel.forwarded_url) == (
        "Ракетный мониторинг",
        "https://t.me/raketa_monitor/5512",
    )
    assert channel.to_post(CHANNEL).forwarded_from == (
        "Ракетный мониторинг (https://t.me/raketa_monitor/5512)"
    )
    hidden = posts[1208].to_post(CHANNEL)
    assert hidden.forwarded_from == "Иван Петров"
    assert posts[1210].forwarded_from is None


def test_links_are_kept_and_emoji_read_as_characters() -> None:
    text = _by_id(_parsed("odd"))[1210].text
    assert text == (
        "🔥 Новый доклад о ракетах средней дальности: "
        "читать доклад (https://example.org/reports/imr-2026)\n"
        "Оригинал новости: https://mil.example.ru/news/2026/11/21/orehnik\n"
        "Источник — @raketa_monitor #Орешник #ДРСМД 👀"
    )
    assert "Intermediate-range" not in text  # the link preview card is not the post


def test_html_looking_text_is_decoded_not_interpreted() -> None:
    text = _by_id(_parsed("odd"))[1212].text
    assert text == (
        'Проверка разметки: <b>не жирный</b> & "кавычки" <script>alert(1)</script> 5 > 3'
    )


def test_very_long_post_is_kept_whole() -> None:
    text = _by_id(_parsed("odd"))[1211].text
    assert len(text) > 3900
    assert text.startswith("Разбор: что изменилось после выхода из ДРСМД\n\nДоговор")
    assert text.endswith("Конец разбора.")
    assert text.count("\n\n") == 12  # thirteen paragraphs


def test_replies_videos_documents_photos_and_quotes() -> None:
    posts = _by_id(_parsed("odd"))
    assert posts[1215].text == "Дополнение: по данным мониторинга, это был учебный пуск."
    assert posts[1213].media_count == 1  # a video
    assert posts[1213].text.startswith("Видео пуска")
    assert posts[1214].text == "Полный текст обзора в PDF, 48 страниц."  # a document's caption
    assert (posts[1216].text, posts[1216].media_count) == ("", 1)  # a photo without caption
    assert posts[1217].text.splitlines() == [
        "Заявление пресс-службы:",
        "Учебный пуск прошёл штатно, цели поражены.",
        "Координаты района: 48.58, 45.72",
        "NOTAM A1234/26 ZONE ACTIVE 0500-0800",
        "Итог: все три цели поражены.",
    ]
    assert posts[1217].views == 2300  # "2.3 K" with a narrow no-break space


def test_page_without_preview_is_recognised() -> None:
    page = parse_page(_page("nopreview"), CLOSED)
    assert not page.has_preview
    assert page.posts == []


@pytest.mark.parametrize(
    "html",
    [
        "",
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
        "<html><head><title>Just a moment...</title></head><body>Checking</body></html>",
        "\x00\ufffd\ufffd<<<>>>&&&" * 100,
        '{"ok": false}',
    ],
    ids=["empty", "gateway", "challenge", "binary", "json"],
)
def test_anything_else_is_a_format_error(html: str) -> None:
    with pytest.raises(PageFormatError, match=f"t.me/s/{CHANNEL}"):
        parse_page(html, CHANNEL)


def test_a_message_without_a_date_is_skipped_with_a_reason() -> None:
    html = _page("latest").replace('datetime="2026-11-20T09:44:00+00:00"', 'datetime="soon"')
    page = parse_page(html, CHANNEL)
    assert 1185 not in _by_id(page)
    assert 1185 in page.ids
    assert page.skipped == [(1185, "date 'soon' is unreadable")]


def test_deeply_nested_markup_does_not_exhaust_the_stack() -> None:
    depth = 50_000
    nested = "<b>" * depth + "глубоко" + "</b>" * depth
    html = _page("latest").replace("Опасность миновала. Сведений о пострадавших нет.", nested, 1)
    assert _by_id(parse_page(html, CHANNEL))[1183].text == "глубоко"


@pytest.mark.parametrize(
    ("shown", "views"),
    [
        ("987", 987),
        ("2.5K", 2500),
        ("12.4K", 12400),
        ("3K", 3000),
        ("1.2M", 1_200_000),
        ("1.5B", 1_500_000_000),
        ("2.3\u202fK", 2300),
        ("9,874", 9874),
        ("2,5K", 2500),
        ("", None),
        ("views", None),
        ("1.2.3K", None),
    ],
)
def test_parse_views(shown: str, views: int | None) -> None:
    assert parse_views(shown) == views


def test_to_post() -> None:
    post = _by_id(_parsed("latest"))[1184].to_post(CHANNEL)
    assert (post.source, post.channel, post.post_id) == ("telegram", CHANNEL, "1184")
    assert post.url == "https://t.me/polygon_svodka/1184"
    assert post.edited
    assert post.views == 44600


def test_source_names_are_checked() -> None:
    assert TgWebSource("@Polygon_Svodka").channel == CHANNEL
    assert TgWebSource(CHANNEL).spec.text == "tgweb:polygon_svodka"
    for bad in ("", "ab", "s/../x", "https://t.me/x", "1channel"):
        with pytest.raises(ValueError, match="username"):
            TgWebSource(bad)


# --- a stand-in t.me on loopback -----------------------------------------------------------


class FakeTelegramWeb(LoopbackServer):
    """Serves @polygon_svodka's history in pages of 20, plus channels that misbehave."""

    def __init__(self) -> None:
        super().__init__()
        latest = _page("latest")
        start, end = latest.index(WRAP), latest.rindex(HISTORY_END)
        self._head, self._tail = latest[:start], latest[end:]
        self.blocks: dict[int, str] = {}
        for name in ("older", "latest", "odd"):
            html = _page(name)
            history = html[html.index(WRAP) : html.rindex(HISTORY_END)]
            for chunk in history.split(WRAP)[1:]:
                found = re.search(rf'data-post="{CHANNEL}/(\d+)"', chunk)
                assert found is not None
                self.blocks[int(found.group(1))] = WRAP + chunk
        self.upto = max(self.blocks)  # messages above this id are "not yet posted"
        self.requests: list[str] = []

    def render(self, before: int | None) -> str:
        ids = sorted(
            post_id
            for post_id in self.blocks
            if post_id <= self.upto and (before is None or post_id < before)
        )[-PAGE_SIZE:]
        return self._head + "".join(self.blocks[post_id] for post_id in ids) + self._tail

    def edit(self, post_id: int, old: str, new: str) -> None:
        assert old in self.blocks[post_id]
        self.blocks[post_id] = self.blocks[post_id].replace(old, new)

    def add_synthetic(self, count: int) -> None:
        """Replace the history by `count` plain posts with ids 1..count."""
        template = self.blocks[1181]
        self.blocks = {
            post_id: template.replace(f"{CHANNEL}/1181", f"{CHANNEL}/{post_id}")
            for post_id in range(1, count + 1)
        }
        self.upto = count

    async def _preview(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        name = request.match_info["name"]
        if name == CHANNEL:
            before = request.query.get("before")
            return web.Response(
                text=self.render(int(before) if before else None), content_type="text/html"
            )
        if name == CLOSED:
            # What Telegram does for a channel without a preview: send the browser to the card.
            raise web.HTTPFound(f"/{name}")
        if name == "garbage_page":
            return web.Response(body=b"\x00\xff\xfe<<not html>>" * 50, content_type="text/html")
        if name == "server_error":
            return web.Response(status=500, text="Internal Server Error")
        if name == "rate_limited":
            return web.Response(status=429, text="Too Many Requests")
        if name == "huge_declared":
            return web.Response(body=b"<p>" * (2 * 1024 * 1024), content_type="text/html")
        if name in ("huge_streamed", "stalled_body"):
            # Chunked, without Content-Length: the size is only known by reading.
            response = web.StreamResponse(headers={"Content-Type": "text/html"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(self._head.encode())
            if name == "stalled_body":
                await self.stall()
            else:
                for _ in range(6):
                    await response.write(b"<div>" + b"x" * (1024 * 1024) + b"</div>")
            await response.write_eof()
            return response
        if name == "slow_answer":
            await self.stall()
        raise web.HTTPNotFound()

    async def _card(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        return web.Response(text=_page("nopreview"), content_type="text/html")

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/s/{name}", self._preview)
        app.router.add_get("/{name}", self._card)


@pytest.fixture
async def tme() -> AsyncIterator[FakeTelegramWeb]:
    async with FakeTelegramWeb() as server:
        yield server


class RecordingFeed(SourceFeed):
    """The real feed, recording each delivery as (post id, the cursor's last_id)."""

    def __init__(self, storage: Storage, source_id: int, matcher: Matcher) -> None:
        super().__init__(Ingest(storage, matcher, asyncio.Event()), storage, source_id)
        self.delivered: list[tuple[int, int]] = []

    async def deliver(self, post: Post, cursor: str) -> None:
        await super().deliver(post, cursor)
        self.delivered.append((int(post.post_id), json.loads(cursor)["last_id"]))

    def new_ids(self) -> list[int]:
        """Deliveries that moved the cursor (not re-deliveries of edited posts)."""
        return [post_id for post_id, last_id in self.delivered if post_id == last_id]


async def _feed(
    storage: Storage, source: TgWebSource, added_at: datetime = ADDED
) -> RecordingFeed:
    """The real feed of a source first added at `added_at` (a later call keeps that time)."""
    source_id = await storage.ensure_source(source.spec.text, "tgweb", added_at=added_at)
    matcher = Matcher(storage)
    await matcher.refresh()
    return RecordingFeed(storage, source_id, matcher)


async def _poll_once(
    storage: Storage,
    server: FakeTelegramWeb,
    name: str = CHANNEL,
    fetch_timeout: float = 20.0,
    added_at: datetime = ADDED,
) -> RecordingFeed:
    source = TgWebSource(name, base_url=server.base_url, once=True, timeout=fetch_timeout)
    feed = await _feed(storage, source, added_at)
    await source.run(feed)
    return feed


async def _cursor(storage: Storage, name: str = CHANNEL) -> int | None:
    source_id = await storage.ensure_source(f"tgweb:{name}", "tgweb")
    cursor = await storage.get_cursor(source_id)
    return None if cursor is None else int(json.loads(cursor)["last_id"])


ODD_POSTS = [1202, *range(1206, 1218)]  # odd.html without its two service messages


async def test_first_run_stores_the_newest_page_only(
    storage: Storage, tme: FakeTelegramWeb
) -> None:
    tme.upto = 1200
    feed = await _poll_once(storage, tme)
    assert feed.new_ids() == list(range(1181, 1201))
    assert tme.requests == [f"/s/{CHANNEL}"]
    assert await storage.count_posts() == 20
    assert await _cursor(storage) == 1200
    stored = await storage.get_post("telegram", CHANNEL, "1184")
    assert stored is not None
    assert stored.post.url == "https://t.me/polygon_svodka/1184"
    assert stored.post.edited
    assert stored.post.views == 44600
    assert stored.post.date == datetime(2026, 11, 20, 8, 43, tzinfo=UTC)


async def test_next_polls_deliver_only_new_posts(storage: Storage, tme: FakeTelegramWeb) -> None:
    tme.upto = 1200
    await _poll_once(storage, tme)
    tme.upto = 1205  # the service message 1201 and the album 1202–1205 appear
    feed = await _poll_once(storage, tme)
    assert feed.new_ids() == [1202]
    # Edited posts still on the newest page are handed over again, without moving the cursor.
    assert [d for d in feed.delivered if d[0] != d[1]] == [(1184, 1200), (1198, 1200)]
    tme.upto = 1209
    assert (await _poll_once(storage, tme)).new_ids() == [1206, 1207, 1208, 1209]
    assert await storage.count_posts() == 25
    assert await _cursor(storage) == 1209


async def test_a_gap_longer_than_a_page_is_filled_by_paging_back(
    storage: Storage, tme: FakeTelegramWeb
) -> None:
    tme.upto = 1165
    assert (await _poll_once(storage, tme)).new_ids() == list(range(1161, 1166))
    tme.upto = max(tme.blocks)
    tme.requests.clear()
    feed = await _poll_once(storage, tme)
    assert tme.requests == [
        f"/s/{CHANNEL}",
        f"/s/{CHANNEL}?before=1196",
        f"/s/{CHANNEL}?before=1176",
    ]
    assert feed.new_ids() == [*range(1166, 1201), *ODD_POSTS]  # ascending, nothing missing
    assert await storage.count_posts() == 5 + 35 + len(ODD_POSTS)
    assert await _cursor(storage) == 1218  # past the newest (service) message


async def test_a_restart_repeats_nothing(storage: Storage, tme: FakeTelegramWeb) -> None:
    await storage.upsert_subscriber(7, "analyst")
    await storage.add_subscription(7, "Орешник")
    tme.upto = 1190
    await _poll_once(storage, tme)
    tme.upto = max(tme.blocks)
    await _poll_once(storage, tme)
    posts, alerts = await storage.count_posts(), await storage.outbox_counts()
    assert alerts["pending"] == 5  # 1176, 1184, 1206 (the poll), 1210 and 1211 name «Орешник»

    feed = await _poll_once(storage, tme)  # a new source object on the same storage
    assert feed.new_ids() == []
    assert {post_id for post_id, _ in feed.delivered} == {1198, 1209}  # edited, unchanged
    assert await storage.count_posts() == posts
    assert await storage.outbox_counts() == alerts


async def test_an_edit_seen_on_the_page_is_stored(storage: Storage, tme: FakeTelegramWeb) -> None:
    tme.upto = 1200
    await _poll_once(storage, tme)
    tme.edit(1198, "не нанёс ущерба", "нанёс ограниченный ущерб")
    await _poll_once(storage, tme)
    stored = await storage.get_post("telegram", CHANNEL, "1198")
    assert stored is not None
    assert (
        stored.post.text
        == "Официально: удар по Энгельсу нанёс ограниченный ущерб стратегической авиации."
    )
    assert stored.post.edited
    assert await _cursor(storage) == 1200


async def test_paging_back_is_bounded(
    storage: Storage,
    tme: FakeTelegramWeb,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(tgweb, "MAX_PAGES_PER_POLL", 3)
    tme.add_synthetic(200)
    source = TgWebSource(CHANNEL, base_url=tme.base_url, once=True)
    feed = await _feed(storage, source)
    await feed.advance(json.dumps({"last_id": 10}))
    with caplog.at_level(logging.WARNING, logger="bot.sources.tgweb"):
        await source.run(feed)
    assert len(tme.requests) == 3
    assert feed.new_ids() == list(range(141, 201))
    assert any("posts 11–140 are not read" in r.getMessage() for r in caplog.records)


async def test_an_unreadable_cursor_means_a_fresh_start(
    storage: Storage, tme: FakeTelegramWeb
) -> None:
    tme.upto = 1200
    source = TgWebSource(CHANNEL, base_url=tme.base_url, once=True)
    feed = await _feed(storage, source)
    await feed.advance("not json")
    await source.run(feed)
    assert feed.new_ids() == list(range(1181, 1201))
    assert tme.requests == [f"/s/{CHANNEL}"]


async def test_a_channel_without_preview_is_reported(
    storage: Storage, tme: FakeTelegramWeb
) -> None:
    with pytest.raises(NoPreviewError) as raised:
        await _poll_once(storage, tme, CLOSED)
    assert str(raised.value) == (
        "channel @zakryty_kanal has no public web preview; use telegram:@zakryty_kanal with an"
        " account"
    )
    assert tme.requests == [f"/s/{CLOSED}", f"/{CLOSED}"]  # the redirect was followed
    assert await storage.count_posts() == 0


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("garbage_page", PageFormatError, "not a channel preview"),
        ("server_error", FetchError, "HTTP 500"),
        ("rate_limited", FetchError, "HTTP 429 .Telegram is rate-limiting"),
        ("huge_declared", FetchError, "larger than 5242880 bytes"),
        ("huge_streamed", FetchError, "larger than 5242880 bytes"),
        ("slow_answer", FetchError, "no answer within 0.3 s"),
        ("stalled_body", FetchError, "no answer within 0.3 s"),
        ("unknown_name", FetchError, "HTTP 404"),
    ],
)
async def test_failures_are_clear_errors_and_store_nothing(
    storage: Storage, tme: FakeTelegramWeb, name: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        await _poll_once(storage, tme, name, fetch_timeout=0.3)
    assert await storage.count_posts() == 0
    assert await _cursor(storage, name) is None


async def test_a_refused_connection_is_a_fetch_error(storage: Storage) -> None:
    async with FakeTelegramWeb() as server:
        base_url = server.base_url
    source = TgWebSource(CHANNEL, base_url=base_url, once=True, timeout=5)
    with pytest.raises(FetchError, match="ClientConnectorError"):
        await source.run(await _feed(storage, source))


async def test_keeps_polling_until_cancelled(storage: Storage, tme: FakeTelegramWeb) -> None:
    tme.upto = 1200
    source = TgWebSource(CHANNEL, base_url=tme.base_url, interval=0.05)
    feed = await _feed(storage, source)
    task = asyncio.create_task(source.run(feed))
    try:
        for _ in range(2400):
            if feed.new_ids():
                break
            await asyncio.sleep(0.025)
        tme.upto = 1209
        for _ in range(2400):
            if 1209 in feed.new_ids():
                break
            await asyncio.sleep(0.025)
        assert feed.new_ids() == [*range(1181, 1201), 1202, *range(1206, 1210)]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_polls_one_host() -> None:
    assert TgWebSource(CHANNEL, base_url="http://127.0.0.1:8080/").host == "127.0.0.1"


def test_a_channel_read_both_ways_is_one_post() -> None:
    # Posts from the preview and from the account share one key, so switching readers
    # (credentials added later) neither stores nor alerts a post twice.
    from datetime import UTC, datetime

    from telethon.tl import types

    from bot.sources.telegram import message_to_post

    web = parse_page(_page("latest"), CHANNEL).posts[0].to_post(CHANNEL)
    message = types.Message(
        id=int(web.post_id),
        peer_id=types.PeerChannel(channel_id=1),
        date=datetime(2026, 11, 20, tzinfo=UTC),
        message=web.text,
    )
    account = message_to_post(message, CHANNEL)
    assert account is not None
    assert (account.source, account.channel, account.post_id) == (
        web.source,
        web.channel,
        web.post_id,
    )
    assert account.url == web.url


# --- the first read, names -------------------------------------------------------------------


async def _alerted(storage: Storage) -> list[int]:
    pending = await storage.pending_messages(datetime.now(UTC) + timedelta(days=1))
    return sorted(int(message.post.post.post_id) for message in pending if message.post)


async def test_a_new_channel_alerts_only_on_posts_of_its_last_day(
    storage: Storage, tme: FakeTelegramWeb
) -> None:
    await storage.upsert_subscriber(7, "analyst")
    for query in ("Орешник", "мост", "Энгельс"):
        await storage.add_subscription(7, query)
    tme.upto = 1200
    added = datetime(2026, 11, 21, 14, 0, tzinfo=UTC)  # a day before: 20 Nov 14:00
    feed = await _poll_once(storage, tme, added_at=added)
    assert feed.new_ids() == list(range(1181, 1201))  # the whole newest page is stored ...
    # ... but «Орешник» (1184, posted 30 h before) and the bridge (1186, 1187) are old news.
    assert await _alerted(storage) == [1193, 1194, 1198]
    found = await storage.search_posts(["Орешник"])
    assert [stored.post.post_id for stored in found] == ["1184"]

    # Later posts alert, the edited old one (1184, handed over again) still does not.
    tme.upto = max(tme.blocks)
    tme.edit(1184, "замечены", "снова замечены")
    await _poll_once(storage, tme)
    assert await _alerted(storage) == [1193, 1194, 1198, 1206, 1210, 1211]


def test_the_channel_title_is_read_from_the_header_or_the_messages() -> None:
    assert _parsed("latest").title == TITLE
    html = _page("latest")
    without_header = re.sub(
        r'<div class="tgme_channel_info_header_title">.*?</div>', "", html, flags=re.S
    )
    assert "tgme_channel_info_header_title" not in without_header
    assert parse_page(without_header, CHANNEL).title == TITLE  # from the author lines
    hostile = html.replace(TITLE, "<b>Полигон</b>\u200b &amp;\n " + "Я" * 300)
    title = parse_page(hostile, CHANNEL).title
    assert title == "Полигон & " + "Я" * 190
    assert parse_page(_page("nopreview"), CLOSED).title is None


async def test_posts_are_labelled_with_the_channels_title(
    storage: Storage, tme: FakeTelegramWeb
) -> None:
    tme.upto = 1200
    await _poll_once(storage, tme)
    stored = await storage.get_post("telegram", CHANNEL, "1193")
    assert stored is not None
    assert stored.post.channel_title == TITLE
    assert source_name(stored) == TITLE
    (info,) = await storage.list_sources()
    assert info.title == TITLE
