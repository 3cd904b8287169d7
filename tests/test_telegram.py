"""The telegram source on telethon's own offline objects and a real SQLite store.

Only the network edge is faked: `FakeGateway` serves a channel's history from a list of
telethon `Message` objects (with `min_id` semantics), raises telethon's errors on demand and
pushes telethon's event objects through the same `handle_event` the real gateway uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from telethon import TelegramClient, errors, events
from telethon.sessions import MemorySession
from telethon.tl import types

from bot.ingest import Matcher
from bot.sources.telegram import (
    AccountProblem,
    ChannelRef,
    ChannelUnavailable,
    LiveHandlers,
    TelegramChannelReader,
    TelegramCursor,
    TelegramGateway,
    TelegramSource,
    TelethonGateway,
    album_to_post,
    handle_event,
    message_to_post,
    normalise_username,
)
from bot.storage import Storage
from tests.feeds import RecordingFeed

CHANNEL_ID = 1_234_567
ACCESS_HASH = 987_654_321
NAME = "milinfo"
SPEC = f"telegram:@{NAME}"
TITLE = "Military Informant"  # the channel's name, as Telegram gives it
DATE = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _msg(
    message_id: int,
    text: str = "",
    *,
    grouped_id: int | None = None,
    photo: bool = False,
    edited: bool = False,
    fwd_from: Any = None,
    views: int | None = None,
    channel_id: int = CHANNEL_ID,
    date: datetime | None = None,
) -> Any:
    return types.Message(
        id=message_id,
        peer_id=types.PeerChannel(channel_id),
        date=date or DATE + timedelta(minutes=message_id),
        message=text,
        post=True,
        grouped_id=grouped_id,
        media=types.MessageMediaPhoto(photo=types.PhotoEmpty(id=message_id)) if photo else None,
        edit_date=DATE + timedelta(hours=5) if edited else None,
        fwd_from=fwd_from,
        views=views,
    )


def _service(message_id: int) -> Any:
    return types.MessageService(
        id=message_id,
        peer_id=types.PeerChannel(CHANNEL_ID),
        date=DATE,
        action=types.MessageActionPinMessage(),
        post=True,
    )


async def _feed(
    storage: Storage, fail_on: str | None = None, added_at: datetime = DATE
) -> RecordingFeed:
    """The real feed of the channel first added at `added_at` (later calls keep that time)."""
    source_id = await storage.ensure_source(SPEC, "telegram", added_at=added_at)
    matcher = Matcher(storage)
    await matcher.refresh()
    return RecordingFeed(storage, source_id, matcher, fail_on)


async def _subscribe(storage: Storage, chat_id: int, query: str) -> None:
    await storage.upsert_subscriber(chat_id, f"user {chat_id}")
    assert await storage.add_subscription(chat_id, query) is not None


async def _cursor(storage: Storage) -> dict[str, Any]:
    source_id = await storage.ensure_source(SPEC, "telegram")
    raw = await storage.get_cursor(source_id)
    assert raw is not None
    data: dict[str, Any] = json.loads(raw)
    return data


async def _stored(storage: Storage, post_id: int) -> Any:
    stored = await storage.get_post("telegram", NAME, str(post_id))
    assert stored is not None, post_id
    return stored


async def _alerted_chats(storage: Storage) -> list[int]:
    return sorted(m.chat_id for m in await storage.pending_messages(datetime.now(UTC)))


class FakeGateway:
    """Telegram's network edge in memory: one channel's history and its live updates."""

    def __init__(self, history: Iterable[Any] = (), *, member: bool = False) -> None:
        self.history: dict[int, Any] = {int(m.id): m for m in history}
        self.member = member
        self.resolves = 0
        self.titles_asked = 0
        self.joins = 0
        self.catch_ups = 0  # completed reads of the history
        self.lookups: list[list[int]] = []
        self.subscribed: list[tuple[ChannelRef, LiveHandlers]] = []
        self.flood_after: int | None = None  # raise FloodWaitError after this many messages
        self.flood_seconds = 5
        self.resolve_errors: list[Exception] = []
        self.read_error: Exception | None = None

    def add(self, *messages: Any) -> None:
        self.history.update((int(m.id), m) for m in messages)

    async def resolve(self, username: str) -> ChannelRef:
        self.resolves += 1
        if self.resolve_errors:
            raise self.resolve_errors.pop(0)
        return ChannelRef(CHANNEL_ID, ACCESS_HASH, self.member, TITLE)

    async def title(self, channel: ChannelRef) -> str | None:
        self.titles_asked += 1
        return TITLE

    async def latest_id(self, channel: ChannelRef) -> int:
        return max(self.history, default=0)

    async def iter_new(self, channel: ChannelRef, min_id: int) -> AsyncIterator[Any]:
        assert (channel.id, channel.access_hash) == (CHANNEL_ID, ACCESS_HASH)
        if self.read_error is not None:
            raise self.read_error
        for served, message_id in enumerate(sorted(i for i in self.history if i > min_id)):
            if self.flood_after is not None and served == self.flood_after:
                self.flood_after = None
                raise errors.FloodWaitError(request=None, capture=self.flood_seconds)
            yield self.history[message_id]
        self.catch_ups += 1

    async def get_messages(self, channel: ChannelRef, ids: Sequence[int]) -> list[Any]:
        self.lookups.append(list(ids))
        return [self.history.get(i) for i in ids]

    async def join(self, channel: ChannelRef) -> bool:
        self.joins += 1
        return True

    def subscribe(self, channel: ChannelRef, handlers: LiveHandlers) -> Callable[[], None]:
        entry = (channel, handlers)
        self.subscribed.append(entry)
        return lambda: self.subscribed.remove(entry)

    async def push(self, event: Any) -> None:
        """Deliver a telethon event as telethon would: to every subscribed handler."""
        for channel, handlers in list(self.subscribed):
            await handle_event(event, handlers, channel.id)


def _source(
    gateway: FakeGateway, *, interval: float = 3600.0, slept: list[float] | None = None
) -> TelegramSource:
    async def connect() -> TelegramGateway:
        return gateway

    async def fake_sleep(seconds: float) -> None:
        assert slept is not None, "unexpected flood wait"
        slept.append(seconds)

    return TelegramSource(f"@{NAME}", connect, catch_up_interval=interval, sleep=fake_sleep)


async def _until(check: Callable[[], bool], task: asyncio.Task[None] | None = None) -> None:
    for _ in range(6000):
        if check():
            return
        if task is not None and task.done():
            task.result()  # surface the source's own error
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


@contextlib.asynccontextmanager
async def _running(
    gateway: FakeGateway, feed: RecordingFeed, **kwargs: Any
) -> AsyncIterator[asyncio.Task[None]]:
    """Run a source until its first catch-up is done; stop it on exit."""
    before = gateway.catch_ups
    task = asyncio.create_task(_source(gateway, **kwargs).run(feed))
    try:
        await _until(lambda: gateway.catch_ups > before, task)
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert gateway.subscribed == [], "live handlers must be removed when the source stops"


async def _followed_from(storage: Storage, last_id: int) -> None:
    """A cursor as a previous run leaves it: channel resolved and joined, read to `last_id`."""
    feed = await _feed(storage)
    cursor = TelegramCursor(last_id, CHANNEL_ID, ACCESS_HASH, joined=True, title=TITLE)
    await feed.advance(cursor.dump())


async def _messages(*items: Any) -> AsyncIterator[Any]:
    for item in items:
        yield item


# --- converters ------------------------------------------------------------------------------


def test_message_to_post_reads_text_link_date_views_and_media() -> None:
    post = message_to_post(_msg(42, "Орешник\x00 на марше", views=1500), NAME)
    assert post is not None
    assert (post.source, post.channel, post.post_id) == ("telegram", NAME, "42")
    assert post.text == "Орешник на марше"
    assert post.url == "https://t.me/milinfo/42"
    assert post.date == DATE + timedelta(minutes=42)
    assert (post.edited, post.views, post.media_count, post.forwarded_from) == (
        False,
        1500,
        0,
        None,
    )
    edited = message_to_post(_msg(43, "fixed typo", edited=True, photo=True), NAME)
    assert edited is not None
    assert (edited.edited, edited.media_count) == (True, 1)
    video = _msg(44, "clip")
    video.media = types.MessageMediaDocument(document=types.DocumentEmpty(id=1), video=True)
    clip = message_to_post(video, NAME)
    assert clip is not None
    assert clip.media_count == 1


def test_service_empty_and_blank_messages_give_no_post() -> None:
    assert message_to_post(_service(5), NAME) is None
    assert message_to_post(types.MessageEmpty(id=6, peer_id=None), NAME) is None
    assert message_to_post(_msg(7, "  "), NAME) is None
    photo_only = message_to_post(_msg(8, photo=True), NAME)
    assert photo_only is not None
    assert (photo_only.text, photo_only.media_count) == ("", 1)


def test_forwards_record_where_the_post_came_from() -> None:
    def origin(**header: Any) -> str | None:
        message = _msg(9, "forwarded", fwd_from=types.MessageFwdHeader(date=DATE, **header))
        post = message_to_post(message, NAME)
        assert post is not None
        return post.forwarded_from

    assert origin(from_id=types.PeerChannel(555)) == "channel:555"
    assert origin(from_name="Иван Иванов") == "Иван Иванов"
    assert origin(post_author="Desk editor") == "Desk editor"
    assert origin() == "unknown"


def test_album_is_one_post_with_its_caption_and_media_count() -> None:
    parts = [
        _msg(12, grouped_id=77, photo=True, views=10),
        _msg(11, grouped_id=77, photo=True, views=12),
        _msg(13, "Caption on the last part", grouped_id=77, photo=True),
    ]
    post = album_to_post(parts, NAME)
    assert (post.post_id, post.url) == ("11", "https://t.me/milinfo/11")
    assert post.text == "Caption on the last part"
    assert (post.media_count, post.views, post.date) == (3, 12, DATE + timedelta(minutes=11))
    with pytest.raises(ValueError, match="at least one"):
        album_to_post([], NAME)


def test_channel_names_are_normalised_and_checked() -> None:
    assert normalise_username("@rybar") == "rybar"
    assert normalise_username(" https://t.me/rybar/ ") == "rybar"
    source = TelegramSource("t.me/Milinfo", _never_connect)
    assert source.spec.text == "telegram:@Milinfo"
    for bad in ("@", "@a b", "@1abc", "https://example.com/x"):
        with pytest.raises(ValueError, match="telegram:@"):
            normalise_username(bad)


async def _never_connect() -> TelegramGateway:
    raise AssertionError("not used")


def test_cursor_round_trips_and_survives_garbage() -> None:
    cursor = TelegramCursor(10, CHANNEL_ID, ACCESS_HASH, joined=True, title=TITLE)
    assert TelegramCursor.load(cursor.dump()) == cursor
    old = '{"last_id": 10, "channel_id": 1, "access_hash": 2, "joined": true}'
    assert TelegramCursor.load(old).title is None  # saved before names were kept
    assert json.loads(cursor.dump())["last_id"] == 10
    for garbage in (None, "", "{", "42", '{"last_id": "x"}', '{"channel_id": [1]}'):
        assert TelegramCursor.load(garbage) == TelegramCursor()


# --- the source, live and catching up -----------------------------------------------------


async def test_new_live_post_is_stored_with_its_link_and_cursor(storage: Storage) -> None:
    gateway = FakeGateway([_msg(100, "an old post from before Dozor followed the channel")])
    feed = await _feed(storage)
    async with _running(gateway, feed):
        await gateway.push(events.NewMessage.Event(_msg(101, "Oreshnik launched", views=3)))
        await _until(lambda: feed.delivered == ["101"])
    stored = await _stored(storage, 101)
    assert stored.post.text == "Oreshnik launched"
    assert stored.post.url == "https://t.me/milinfo/101"
    assert await storage.count_posts() == 1  # the first run starts after the newest post
    cursor = await _cursor(storage)
    assert (cursor["last_id"], cursor["channel_id"]) == (101, CHANNEL_ID)


async def test_edit_is_stored_and_alerts_only_newly_matching_subscribers(
    storage: Storage,
) -> None:
    await _subscribe(storage, 1, "Oreshnik")
    await _subscribe(storage, 2, "Kapustin")
    await _followed_from(storage, 100)
    gateway = FakeGateway()
    feed = await _feed(storage)
    async with _running(gateway, feed):
        await gateway.push(events.NewMessage.Event(_msg(101, "Oreshnik launched")))
        await _until(lambda: feed.delivered == ["101"])
        assert await _alerted_chats(storage) == [1]
        edit = _msg(101, "Oreshnik launched from Kapustin Yar", edited=True)
        await gateway.push(events.MessageEdited.Event(edit))
        await _until(lambda: feed.delivered == ["101", "101"])
    stored = await _stored(storage, 101)
    assert stored.post.edited
    assert stored.post.text == "Oreshnik launched from Kapustin Yar"
    assert await _alerted_chats(storage) == [1, 2]  # chat 1 is not told twice
    assert (await _cursor(storage))["last_id"] == 101


async def test_deletion_marks_the_post_deleted_and_keeps_it(storage: Storage) -> None:
    await _followed_from(storage, 100)
    gateway = FakeGateway()
    feed = await _feed(storage)
    async with _running(gateway, feed):
        await gateway.push(events.NewMessage.Event(_msg(101, "soon gone")))
        await _until(lambda: feed.delivered == ["101"])
        other = types.PeerChannel(999)  # the same id deleted in another channel: not ours
        await gateway.push(events.MessageDeleted.Event(deleted_ids=[101], peer=other))
        await gateway.push(events.MessageDeleted.Event(deleted_ids=[101], peer=None))
        assert not (await _stored(storage, 101)).deleted
        ours = types.PeerChannel(CHANNEL_ID)
        await gateway.push(events.MessageDeleted.Event(deleted_ids=[101], peer=ours))
    stored = await _stored(storage, 101)
    assert stored.deleted
    assert stored.post.text == "soon gone"


async def test_live_album_is_one_post_not_three(storage: Storage) -> None:
    await _followed_from(storage, 100)
    gateway = FakeGateway()
    feed = await _feed(storage)
    parts = [
        _msg(101, "Three photos of the launcher", grouped_id=5, photo=True),
        _msg(102, grouped_id=5, photo=True),
        _msg(103, grouped_id=5, photo=True),
    ]
    async with _running(gateway, feed):
        for part in parts:  # telethon fires NewMessage for every part, then one Album
            await gateway.push(events.NewMessage.Event(part))
        await gateway.push(events.Album.Event(parts))
        await _until(lambda: feed.delivered == ["101"])
        await gateway.push(events.NewMessage.Event(_msg(104, "next post")))
        await _until(lambda: feed.delivered == ["101", "104"])
    album = await _stored(storage, 101)
    assert (album.post.text, album.post.media_count) == ("Three photos of the launcher", 3)
    assert await storage.count_posts() == 2
    assert gateway.catch_ups == 1  # 104 followed the album directly: no extra read


async def test_album_caption_edit_updates_the_album_post(storage: Storage) -> None:
    await _followed_from(storage, 100)
    parts = [_msg(101, "first caption", grouped_id=5, photo=True)] + [
        _msg(i, grouped_id=5, photo=True) for i in (102, 103)
    ]
    gateway = FakeGateway(parts)
    feed = await _feed(storage)
    async with _running(gateway, feed):  # the catch-up reads the album
        await _until(lambda: feed.delivered == ["101"])
    edited = _msg(101, "corrected caption", grouped_id=5, photo=True, edited=True)
    gateway.add(edited)
    async with _running(gateway, feed):  # a fresh reader must look the other parts up
        await gateway.push(events.MessageEdited.Event(edited))
        await _until(lambda: feed.delivered == ["101", "101"])
    album = await _stored(storage, 101)
    assert (album.post.text, album.post.media_count, album.post.edited) == (
        "corrected caption",
        3,
        True,
    )
    assert len(gateway.lookups) == 1
    assert await storage.count_posts() == 1


async def test_forward_is_recorded(storage: Storage) -> None:
    await _followed_from(storage, 100)
    gateway = FakeGateway()
    feed = await _feed(storage)
    header = types.MessageFwdHeader(date=DATE, from_id=types.PeerChannel(555), channel_post=7)
    async with _running(gateway, feed):
        await gateway.push(events.NewMessage.Event(_msg(101, "reposted", fwd_from=header)))
        await _until(lambda: feed.delivered == ["101"])
    assert (await _stored(storage, 101)).post.forwarded_from == "channel:555"


async def test_catch_up_after_a_gap_delivers_missed_posts_in_order(storage: Storage) -> None:
    await _subscribe(storage, 1, "Oreshnik")
    await _followed_from(storage, 100)
    gateway = FakeGateway()
    feed = await _feed(storage)
    async with _running(gateway, feed):
        # 101–103 never arrive live (large channels drop updates); 102 is a pin notice.
        gateway.add(_msg(101, "Oreshnik one"), _service(102), _msg(103, "Oreshnik three"))
        latest = _msg(104, "Oreshnik four")
        gateway.add(latest)
        await gateway.push(events.NewMessage.Event(latest))  # shows the gap
        await _until(lambda: feed.delivered == ["101", "103", "104"])
        await gateway.push(events.NewMessage.Event(latest))  # a late duplicate
        await asyncio.sleep(0.05)
    assert feed.delivered == ["101", "103", "104"]
    assert len(await storage.pending_messages(datetime.now(UTC))) == 3
    assert (await _cursor(storage))["last_id"] == 104


async def test_periodic_catch_up_finds_posts_without_live_updates(storage: Storage) -> None:
    await _followed_from(storage, 100)
    gateway = FakeGateway()
    feed = await _feed(storage)
    async with _running(gateway, feed, interval=0.01) as task:
        gateway.add(_msg(101, "quiet one"), _msg(102, "quiet two"))
        await _until(lambda: feed.delivered == ["101", "102"], task)


async def test_album_in_catch_up_and_album_split_between_reads(storage: Storage) -> None:
    await _followed_from(storage, 100)
    feed = await _feed(storage)
    reader = TelegramChannelReader(feed, NAME, TelegramCursor(100, CHANNEL_ID, ACCESS_HASH))
    first = _msg(101, "caption", grouped_id=9, photo=True)
    second = _msg(102, grouped_id=9, photo=True)
    third = _msg(103, grouped_id=9, photo=True)
    # A read that ends while the album is still being posted sees only two parts ...
    assert await reader.catch_up(_messages(first, second)) == 1
    # ... the next read brings the third, which joins the same post.
    await reader.catch_up(_messages(third, _msg(104, "after the album")))
    album = await _stored(storage, 101)
    assert (album.post.media_count, album.post.text) == (3, "caption")
    assert await storage.count_posts() == 2
    assert reader.last_id == 104


async def test_post_both_live_and_in_catch_up_is_stored_and_alerted_once(
    storage: Storage,
) -> None:
    await _subscribe(storage, 1, "Oreshnik")
    feed = await _feed(storage)
    reader = TelegramChannelReader(feed, NAME, TelegramCursor(100, CHANNEL_ID, ACCESS_HASH))
    post_101, post_102 = _msg(101, "Oreshnik live"), _msg(102, "Oreshnik late")
    await reader.on_new(post_101)
    # A catch-up fetched before the live delivery still holds 101.
    assert await reader.catch_up(_messages(post_101, post_102)) == 1
    await reader.on_new(post_102)  # its live update arrives after the catch-up
    await reader.on_album([post_101])
    assert feed.delivered == ["101", "102"]
    assert await _alerted_chats(storage) == [1, 1]
    assert await storage.count_posts() == 2


async def test_service_message_moves_the_cursor_without_a_post(storage: Storage) -> None:
    feed = await _feed(storage)
    reader = TelegramChannelReader(feed, NAME, TelegramCursor(100, CHANNEL_ID, ACCESS_HASH))
    assert await reader.catch_up(_messages(_service(101))) == 0
    assert reader.last_id == 101
    assert (await _cursor(storage))["last_id"] == 101
    assert await storage.count_posts() == 0


async def test_restart_in_the_middle_of_a_catch_up_loses_and_repeats_nothing(
    storage: Storage,
) -> None:
    await _followed_from(storage, 100)
    gateway = FakeGateway([_msg(i, f"post {i}") for i in range(101, 106)])
    crashing = await _feed(storage, fail_on="103")
    with pytest.raises(RuntimeError, match="simulated crash"):
        await _source(gateway).run(crashing)
    assert crashing.delivered == ["101", "102"]
    assert gateway.subscribed == []
    feed = await _feed(storage)
    async with _running(gateway, feed):
        await _until(lambda: feed.delivered == ["103", "104", "105"])
    assert await storage.count_posts() == 5


async def test_flood_wait_is_slept_through_and_logged_then_catch_up_continues(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    await _followed_from(storage, 100)
    gateway = FakeGateway([_msg(i, f"post {i}") for i in range(101, 104)])
    gateway.flood_after = 1
    gateway.flood_seconds = 5
    slept: list[float] = []
    feed = await _feed(storage)
    with caplog.at_level(logging.WARNING, logger="bot.sources.telegram"):
        async with _running(gateway, feed, slept=slept):
            await _until(lambda: feed.delivered == ["101", "102", "103"])
    assert slept == [5]
    assert any("flood wait of 5 s" in r.getMessage() for r in caplog.records)


async def test_long_flood_wait_while_resolving_is_slept_then_retried(storage: Storage) -> None:
    gateway = FakeGateway([_msg(100, "old")])
    gateway.resolve_errors = [errors.FloodWaitError(request=None, capture=3600)]
    slept: list[float] = []
    feed = await _feed(storage)
    async with _running(gateway, feed, slept=slept):
        pass
    assert slept == [3600]
    assert gateway.resolves == 2


async def test_username_is_resolved_once_across_restarts(storage: Storage) -> None:
    gateway = FakeGateway([_msg(100, "old")], member=False)
    for _ in range(3):
        feed = await _feed(storage)
        async with _running(gateway, feed):
            pass
    assert (gateway.resolves, gateway.joins) == (1, 1)
    cursor = await _cursor(storage)
    assert cursor == {
        "last_id": 100,
        "channel_id": CHANNEL_ID,
        "access_hash": ACCESS_HASH,
        "joined": True,
        "title": TITLE,
    }
    assert gateway.titles_asked == 0  # resolving gave the name


async def test_a_channel_already_joined_is_not_joined_again(storage: Storage) -> None:
    gateway = FakeGateway([_msg(100, "old")], member=True)
    feed = await _feed(storage)
    async with _running(gateway, feed):
        pass
    assert (gateway.resolves, gateway.joins) == (1, 0)


@pytest.mark.parametrize(
    "error",
    [
        errors.AuthKeyUnregisteredError(request=None),
        errors.SessionRevokedError(request=None),
        errors.UserDeactivatedBanError(request=None),
        errors.UserDeactivatedError(request=None),
    ],
)
async def test_account_problems_raise_account_problem(storage: Storage, error: Exception) -> None:
    gateway = FakeGateway()
    gateway.resolve_errors = [error]
    with pytest.raises(AccountProblem, match="dozor login"):
        await _source(gateway).run(await _feed(storage))


async def test_revoked_session_while_reading_raises_account_problem(storage: Storage) -> None:
    await _followed_from(storage, 100)
    gateway = FakeGateway()
    gateway.read_error = errors.SessionRevokedError(request=None)
    with pytest.raises(AccountProblem, match="no longer valid"):
        await _source(gateway).run(await _feed(storage))
    assert gateway.subscribed == []


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (errors.ChannelPrivateError(request=None), "private"),
        (errors.UsernameNotOccupiedError(request=None), "does not exist"),
        (errors.UsernameInvalidError(request=None), "does not exist"),
    ],
)
async def test_unavailable_channels_raise_channel_unavailable(
    storage: Storage, error: Exception, message: str
) -> None:
    gateway = FakeGateway()
    gateway.resolve_errors = [error]
    with pytest.raises(ChannelUnavailable, match=message):
        await _source(gateway).run(await _feed(storage))


# --- the real gateway's wiring, driven by telethon's own dispatcher ---------------------------


async def test_telethon_gateway_routes_real_updates_for_its_channel_only(
    storage: Storage,
) -> None:
    # A client that never connects: updates go straight into telethon's dispatcher (an
    # internal method, pinned with telethon 1.45), which builds the events and filters chats.
    client = TelegramClient(MemorySession(), 1, "0" * 32)
    gateway = TelethonGateway(client)
    feed = await _feed(storage)
    reader = TelegramChannelReader(feed, NAME, TelegramCursor(100, CHANNEL_ID, ACCESS_HASH))
    unsubscribe = gateway.subscribe(ChannelRef(CHANNEL_ID, ACCESS_HASH), reader)

    async def dispatch(update: Any) -> None:
        update._entities = {}  # what telethon's update loop attaches before dispatching
        await client._dispatch_update(update)

    parts = [_msg(101, "album caption", grouped_id=3, photo=True)] + [
        _msg(i, grouped_id=3, photo=True) for i in (102, 103)
    ]
    for pts, part in enumerate(parts, start=1):
        await dispatch(types.UpdateNewChannelMessage(message=part, pts=pts, pts_count=1))
    await _until(lambda: feed.delivered == ["101"])  # the Album event comes ~0.5 s later
    stranger = _msg(104, "another channel", channel_id=999)
    await dispatch(types.UpdateNewChannelMessage(message=stranger, pts=4, pts_count=1))
    await dispatch(types.UpdateNewChannelMessage(message=_msg(104, "next"), pts=5, pts_count=1))
    edit = _msg(104, "next, corrected", edited=True)
    await dispatch(types.UpdateEditChannelMessage(message=edit, pts=6, pts_count=1))
    await dispatch(
        types.UpdateDeleteChannelMessages(
            channel_id=CHANNEL_ID, messages=[101], pts=7, pts_count=1
        )
    )
    assert feed.delivered == ["101", "104", "104"]
    assert (await _stored(storage, 104)).post.text == "next, corrected"
    album = await _stored(storage, 101)
    assert (album.deleted, album.post.media_count) == (True, 3)
    unsubscribe()
    assert client.list_event_handlers() == []


# --- the first read, names, health -----------------------------------------------------------


async def test_an_old_post_edited_after_the_channel_was_added_raises_no_alert(
    storage: Storage,
) -> None:
    await _subscribe(storage, 1, "Oreshnik")
    added = DATE + timedelta(days=3)
    feed = await _feed(storage, added_at=added)
    cursor = TelegramCursor(100, CHANNEL_ID, ACCESS_HASH, joined=True, title=TITLE)
    await feed.advance(cursor.dump())
    gateway = FakeGateway()
    async with _running(gateway, feed):
        # Message 90 was posted three days before Dozor followed the channel.
        old = _msg(90, "Oreshnik: a correction to an old report", edited=True)
        await gateway.push(events.MessageEdited.Event(old))
        await _until(lambda: feed.delivered == ["90"])
        new = _msg(101, "Oreshnik on duty", date=added + timedelta(hours=1))
        await gateway.push(events.NewMessage.Event(new))
        await _until(lambda: feed.delivered == ["90", "101"])
    assert (await _stored(storage, 90)).post.edited  # stored, so /search finds it
    pending = await storage.pending_messages(datetime.now(UTC))
    assert [m.post.post.post_id for m in pending if m.post] == ["101"]


async def test_posts_and_albums_carry_the_channels_title(storage: Storage) -> None:
    await _followed_from(storage, 100)
    gateway = FakeGateway()
    feed = await _feed(storage)
    parts = [_msg(101, "caption", grouped_id=5, photo=True), _msg(102, grouped_id=5, photo=True)]
    async with _running(gateway, feed):
        await gateway.push(events.Album.Event(parts))
        await gateway.push(events.NewMessage.Event(_msg(103, "text")))
        await _until(lambda: feed.delivered == ["101", "103"])
    assert (await _stored(storage, 101)).post.channel_title == TITLE
    assert (await _stored(storage, 103)).post.channel_title == TITLE
    (info,) = await storage.list_sources()
    assert info.title == TITLE


async def test_a_cursor_saved_before_names_were_kept_asks_for_the_name_once(
    storage: Storage,
) -> None:
    feed = await _feed(storage)
    await feed.advance('{"last_id": 100, "channel_id": 1234567, "access_hash": 987654321}')
    gateway = FakeGateway([_msg(101, "new")])
    for _ in range(2):
        async with _running(gateway, await _feed(storage)):
            pass
    assert (gateway.resolves, gateway.titles_asked) == (0, 1)
    assert (await _cursor(storage))["title"] == TITLE
    assert (await _stored(storage, 101)).post.channel_title == TITLE


def test_message_to_post_takes_the_channels_title() -> None:
    post = message_to_post(_msg(5, "text"), NAME, TITLE)
    assert post is not None
    assert post.channel_title == TITLE
    assert album_to_post([_msg(6, "a", grouped_id=1, photo=True)], NAME, TITLE).channel_title == (
        TITLE
    )


async def test_telethon_gateway_reads_the_title_of_the_resolved_channel() -> None:
    client = TelegramClient(MemorySession(), 1, "0" * 32)
    channel = types.Channel(
        id=CHANNEL_ID,
        title="  Military\nInformant\u200b ",
        photo=types.ChatPhotoEmpty(),
        date=DATE,
        access_hash=ACCESS_HASH,
        username=NAME,
        broadcast=True,
        left=True,
    )

    async def get_entity(_: Any) -> Any:
        return channel

    client.get_entity = get_entity  # type: ignore[method-assign]
    gateway = TelethonGateway(client)
    assert await gateway.resolve(NAME) == ChannelRef(CHANNEL_ID, ACCESS_HASH, False, TITLE)
    assert await gateway.title(ChannelRef(CHANNEL_ID, ACCESS_HASH)) == TITLE


async def test_a_completed_catch_up_is_a_healthy_read(storage: Storage) -> None:
    gateway = FakeGateway([_msg(100, "old")])
    feed = await _feed(storage)
    await feed.failed("FloodWaitError: earlier trouble")
    async with _running(gateway, feed):
        pass
    (info,) = await storage.list_sources()
    assert (info.failures, info.failing_since) == (0, None)
    assert info.last_ok_at is not None


async def test_a_session_revoked_after_resolving_shows_the_source_stopped(
    storage: Storage,
) -> None:
    from bot.i18n import Catalog
    from bot.sources.health import describe, warning

    en = Catalog(strict=True).texts("en")
    from bot.sources.supervisor import supervise

    gateway = FakeGateway()  # resolving works and keeps the cursor; reading is refused
    gateway.read_error = errors.SessionRevokedError(request=None)
    feed = await _feed(storage)

    async def stop(seconds: float) -> None:
        raise asyncio.CancelledError  # after the first failure is recorded

    with pytest.raises(asyncio.CancelledError):
        await supervise(
            _source(gateway),
            feed,
            lambda error, stopped: feed.failed(error, stopped=stopped),
            sleep=stop,
        )
    assert (await _cursor(storage))["channel_id"] == CHANNEL_ID
    (info,) = await storage.list_sources()
    now = datetime.now(UTC)
    line = describe(en, info, now)
    assert "stopped since" in line
    assert "AccountProblem: the Telegram session is no longer valid" in line
    assert line.endswith("; never read OK")
    assert (warning(en, info, now) or "").startswith("stopped: AccountProblem: ")
