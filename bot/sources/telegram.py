"""`telegram:@name` — follows a Telegram channel as a user account through telethon.

Live updates (new posts, albums, edits, deletions) are handled as they arrive, but Telegram
delivers updates from large channels late or not at all and telethon drops a long backlog,
so each channel also keeps a durable last-seen message id and catches up from it on start
and every few minutes. Both paths go through one `TelegramChannelReader`, which delivers
every message id exactly once, in order, with the cursor saved in the post's transaction.

This module is the only importer of telethon. Everything that talks to the network sits
behind the small `TelegramGateway` protocol (`TelethonGateway` is the real one), so the
reading logic is tested with telethon's own message and event objects built offline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from telethon import TelegramClient, errors, events, functions, utils
from telethon.tl import types

from bot.domain import Post, SourceSpec, clean_text, clean_title
from bot.sources.base import Feed, SourceStopped
from bot.sources.links import TELEGRAM_USERNAME

log = logging.getLogger(__name__)

# telethon ships no type information; its messages and events are plain `Any` here.
TgMessage = Any
T = TypeVar("T")

KIND = "telegram"
CATCH_UP_INTERVAL = 120.0
JOIN_INTERVAL = 10.0  # at most one channel join per this many seconds, process-wide
ALBUM_MAX_PARTS = 10  # Telegram's limit; bounds the ids looked up around an edited part
RECENT_ALBUMS = 64  # albums remembered per channel, to merge late parts and apply edits


class AccountProblem(SourceStopped):
    """The Telegram account cannot be used (session revoked, account banned): tell admins."""


class ChannelUnavailable(SourceStopped):
    """The channel does not exist, is private, or this account was banned from it."""


# --- pure conversion: telethon messages → Post ----------------------------------------------


def post_url(username: str, message_id: int) -> str:
    return f"https://t.me/{username}/{message_id}"


def _utc(date: datetime | None) -> datetime:
    if date is None:
        return datetime.now(UTC)
    return date if date.tzinfo else date.replace(tzinfo=UTC)


def _media_count(media: Any) -> int:
    # Photos, videos, files, voice notes and GIFs count; link previews, polls and maps don't.
    return 1 if isinstance(media, types.MessageMediaPhoto | types.MessageMediaDocument) else 0


def _is_message(message: Any) -> bool:
    """True for a real message; False for MessageService (pins, title changes), MessageEmpty."""
    return isinstance(message, types.Message)


def _grouped_id(message: Any) -> int | None:
    group = getattr(message, "grouped_id", None)
    return None if group is None else int(group)


def forwarded_from(message: TgMessage) -> str | None:
    """Where a forwarded message came from: a name, `@username`, `channel:<id>`, or None."""
    header = getattr(message, "fwd_from", None)
    if header is None:
        return None
    # A message read through a client knows the origin chat when Telegram sent it along.
    forward = getattr(message, "forward", None)
    origin = getattr(forward, "chat", None) if forward is not None else None
    username = getattr(origin, "username", None)
    if isinstance(username, str) and username:
        return f"@{username}"
    if header.from_name:
        return clean_text(str(header.from_name), limit=200)
    peer = header.from_id
    if isinstance(peer, types.PeerChannel):
        return f"channel:{int(peer.channel_id)}"
    if isinstance(peer, types.PeerUser):
        return f"user:{int(peer.user_id)}"
    if isinstance(peer, types.PeerChat):
        return f"chat:{int(peer.chat_id)}"
    if header.post_author:
        return clean_text(str(header.post_author), limit=200)
    return "unknown"


def message_to_post(message: TgMessage, username: str, title: str | None = None) -> Post | None:
    """A Post for one channel message (of the channel titled `title`); None for service
    messages and messages with nothing."""
    if not _is_message(message):
        return None
    # `message.message` is the raw text; `Message.text` needs a client to format it.
    text = clean_text(message.message or "")
    media_count = _media_count(message.media)
    if not text.strip() and media_count == 0:
        return None
    message_id = int(message.id)
    return Post(
        source=KIND,
        channel=username,
        post_id=str(message_id),
        date=_utc(message.date),
        text=text,
        url=post_url(username, message_id),
        edited=message.edit_date is not None,
        forwarded_from=forwarded_from(message),
        views=None if message.views is None else int(message.views),
        media_count=media_count,
        channel_title=title,
    )


def album_to_post(messages: Sequence[TgMessage], username: str, title: str | None = None) -> Post:
    """One Post for an album: the first part's id and date, the caption, one media per part."""
    parts = sorted((m for m in messages if _is_message(m)), key=lambda m: int(m.id))
    if not parts:
        raise ValueError("an album needs at least one message")
    first = parts[0]
    # The caption may sit on any part (usually the first); Telegram shows it once.
    captioned = next((m for m in parts if (m.message or "").strip()), first)
    views = [int(m.views) for m in parts if m.views is not None]
    origin = next((f for m in parts if (f := forwarded_from(m)) is not None), None)
    first_id = int(first.id)
    return Post(
        source=KIND,
        channel=username,
        post_id=str(first_id),
        date=_utc(first.date),
        text=clean_text(captioned.message or ""),
        url=post_url(username, first_id),
        edited=any(m.edit_date is not None for m in parts),
        forwarded_from=origin,
        views=max(views) if views else None,
        media_count=len(parts),
        channel_title=title,
    )


# --- the cursor and the per-channel reader --------------------------------------------------


@dataclass(frozen=True, slots=True)
class TelegramCursor:
    """What survives a restart: the last message id covered and the resolved channel."""

    last_id: int | None = None  # None: never read; start from the channel's newest post
    channel_id: int | None = None
    access_hash: int | None = None  # with the id, enough to call Telegram without resolving
    joined: bool = False
    title: str | None = None  # the channel's name ("" when it has none; None: not asked yet)

    def dump(self) -> str:
        return json.dumps(
            {
                "last_id": self.last_id,
                "channel_id": self.channel_id,
                "access_hash": self.access_hash,
                "joined": self.joined,
                "title": self.title,
            }
        )

    @classmethod
    def load(cls, text: str | None) -> TelegramCursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            title = data.get("title")
            return cls(
                _optional_int(data.get("last_id")),
                _optional_int(data.get("channel_id")),
                _optional_int(data.get("access_hash")),
                bool(data.get("joined", False)),
                (clean_title(title) or "") if isinstance(title, str) else None,
            )
        except (ValueError, TypeError, AttributeError):
            log.warning("telegram cursor %r is unreadable; resolving the channel again", text)
            return cls()


def _optional_int(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"not an integer: {value!r}")
    return int(value)


class LiveHandlers(Protocol):
    """What a gateway calls when Telegram pushes an update for a subscribed channel."""

    async def on_new(self, message: TgMessage) -> None: ...

    async def on_album(self, messages: Sequence[TgMessage]) -> None: ...

    async def on_edit(self, message: TgMessage) -> None: ...

    async def on_delete(self, ids: Sequence[int]) -> None: ...


Lookup = Callable[[Sequence[int]], Awaitable[Sequence[TgMessage | None]]]


class TelegramChannelReader:
    """One channel's reading state: delivers each message id once, in order, with its cursor.

    Catch-up batches and live updates share a lock and an in-memory `last_id` (every id up to
    it is covered). A live post is delivered at once only when it directly follows `last_id`;
    anything else might leave a hole, so it asks the source to catch up instead, and the
    catch-up delivers the missing posts and the live one in order.
    """

    def __init__(
        self, feed: Feed, channel: str, cursor: TelegramCursor, *, lookup: Lookup | None = None
    ) -> None:
        self.channel = channel
        self._feed = feed
        self._cursor = replace(cursor, last_id=cursor.last_id or 0)
        self._title = cursor.title or None
        self._lookup = lookup  # fetches messages by id (the other parts of an edited album)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._albums: OrderedDict[int, list[TgMessage]] = OrderedDict()

    @property
    def last_id(self) -> int:
        return self._cursor.last_id or 0

    @property
    def cursor(self) -> TelegramCursor:
        return self._cursor

    def request_catch_up(self) -> None:
        self._wake.set()

    async def wait_for_catch_up(self, interval: float) -> None:
        """Return after `interval` seconds, or sooner when a live update showed a gap."""
        try:
            async with asyncio.timeout(interval):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def catch_up(self, messages: AsyncIterable[TgMessage]) -> int:
        """Deliver messages newer than `last_id` (ascending ids); returns posts delivered."""
        delivered = 0
        async with self._lock:
            self._wake.clear()
            album: list[TgMessage] = []
            skipped_to = 0  # the highest id that held no post (service messages and the like)
            try:
                async for message in messages:
                    message_id = int(message.id)
                    if message_id <= self.last_id:
                        continue  # delivered live while this batch was being fetched
                    group = _grouped_id(message) if _is_message(message) else None
                    if album and group != _grouped_id(album[0]):
                        delivered += await self._deliver_album(album)
                        album = []
                    if group is not None:
                        album.append(message)
                        continue
                    post = message_to_post(message, self.channel, self._title)
                    if post is None:
                        skipped_to = message_id
                        continue
                    await self._deliver(post, message_id)
                    delivered += 1
                if album:
                    delivered += await self._deliver_album(album)
            finally:
                aclose = getattr(messages, "aclose", None)
                if aclose is not None:
                    await aclose()
            if skipped_to > self.last_id:
                # Nothing to store, but the cursor moves so the next read starts after it.
                cursor = replace(self._cursor, last_id=skipped_to)
                await self._feed.advance(cursor.dump())
                self._cursor = cursor
        if delivered:
            log.info(
                "telegram @%s: %d post(s) caught up, now at message %d",
                self.channel,
                delivered,
                self.last_id,
            )
        return delivered

    # --- live updates (called by the gateway's event handlers) -----------------------------

    async def on_new(self, message: TgMessage) -> None:
        if _grouped_id(message) is not None:
            return  # an album part: the Album event (or a catch-up) brings the whole album
        try:
            async with self._lock:
                message_id = int(message.id)
                if message_id <= self.last_id:
                    return
                if message_id != self.last_id + 1:
                    self._wake.set()
                    return
                post = message_to_post(message, self.channel, self._title)
                if post is None:
                    cursor = replace(self._cursor, last_id=message_id)
                    await self._feed.advance(cursor.dump())
                    self._cursor = cursor
                    return
                await self._deliver(post, message_id)
        except Exception:
            log.exception("telegram @%s: live message failed; catching up", self.channel)
            self._wake.set()

    async def on_album(self, messages: Sequence[TgMessage]) -> None:
        try:
            async with self._lock:
                fresh = sorted(
                    (m for m in messages if _is_message(m) and int(m.id) > self.last_id),
                    key=lambda m: int(m.id),
                )
                if not fresh:
                    return
                if int(fresh[0].id) != self.last_id + 1:
                    self._wake.set()
                    return
                await self._deliver_album(fresh)
        except Exception:
            log.exception("telegram @%s: live album failed; catching up", self.channel)
            self._wake.set()

    async def on_edit(self, message: TgMessage) -> None:
        try:
            async with self._lock:
                message_id = int(message.id)
                if message_id > self.last_id:
                    self._wake.set()  # not read yet: the catch-up reads it with its new text
                    return
                group = _grouped_id(message)
                if group is None:
                    post = message_to_post(message, self.channel, self._title)
                else:
                    parts = await self._album_with(message, group)
                    post = album_to_post(parts, self.channel, self._title) if parts else None
                if post is None:
                    return
                # The cursor stays where it is: an edit never moves reading backwards.
                await self._feed.deliver(replace(post, edited=True), self._cursor.dump())
        except Exception:
            log.exception("telegram @%s: edit of message %s failed", self.channel, message.id)

    async def on_delete(self, ids: Sequence[int]) -> None:
        try:
            async with self._lock:
                for message_id in ids:
                    await self._feed.delete(KIND, self.channel, str(int(message_id)))
        except Exception:
            log.exception("telegram @%s: deletion of %s failed", self.channel, list(ids))

    # --- delivery -------------------------------------------------------------------------

    async def _deliver(self, post: Post, up_to: int) -> None:
        cursor = replace(self._cursor, last_id=max(self.last_id, up_to))
        await self._feed.deliver(post, cursor.dump())
        self._cursor = cursor  # only once stored: a failed delivery is read again

    async def _deliver_album(self, parts: Sequence[TgMessage]) -> int:
        group = _grouped_id(parts[0])
        assert group is not None
        # Parts that arrive after the album was delivered (a batch ended mid-album) join it:
        # the album stays one post under its first id, with the larger media count.
        known = {int(m.id): m for m in self._albums.get(group, [])}
        known.update((int(m.id), m) for m in parts)
        whole = [known[key] for key in sorted(known)]
        await self._deliver(album_to_post(whole, self.channel, self._title), int(whole[-1].id))
        self._remember(group, whole)
        return 1

    def _remember(self, group: int, parts: list[TgMessage]) -> None:
        self._albums[group] = parts
        self._albums.move_to_end(group)
        while len(self._albums) > RECENT_ALBUMS:
            self._albums.popitem(last=False)

    async def _album_with(self, edited: TgMessage, group: int) -> list[TgMessage]:
        """Every part of the album an edited message belongs to, the edited part included."""
        parts = self._albums.get(group)
        if parts is None and self._lookup is not None:
            # Parts of one album have neighbouring ids; fetch the ids around the edited one.
            around = range(max(1, int(edited.id) - ALBUM_MAX_PARTS + 1), int(edited.id) + 10)
            fetched = await self._lookup(list(around))
            parts = [m for m in fetched if _is_message(m) and _grouped_id(m) == group]
        if not parts:
            log.info("telegram @%s: edited album part %s not found", self.channel, edited.id)
            return []
        merged = {int(m.id): m for m in parts}
        merged[int(edited.id)] = edited
        whole = [merged[key] for key in sorted(merged)]
        self._remember(group, whole)
        return whole


async def handle_event(event: Any, handlers: LiveHandlers, channel_id: int) -> None:
    """Route one telethon event for a channel to the reader's live handlers."""
    if getattr(event, "chat_id", None) != utils.get_peer_id(types.PeerChannel(channel_id)):
        return  # telethon filters by chat too; deletions outside channels carry no chat at all
    # MessageEdited.Event subclasses NewMessage.Event, so it must be checked first.
    if isinstance(event, events.Album.Event):
        await handlers.on_album(list(event.messages))
    elif isinstance(event, events.MessageEdited.Event):
        await handlers.on_edit(event.message)
    elif isinstance(event, events.NewMessage.Event):
        await handlers.on_new(event.message)
    elif isinstance(event, events.MessageDeleted.Event):
        await handlers.on_delete([int(i) for i in event.deleted_ids or ()])


# --- the network edge -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """A resolved channel: all later calls need, so its username is resolved only once."""

    id: int
    access_hash: int
    member: bool = False
    title: str | None = None  # its human name, as Telegram shows it


class TelegramGateway(Protocol):
    """The few Telegram calls a channel source makes (telethon's `TelethonGateway` in use)."""

    async def resolve(self, username: str) -> ChannelRef: ...

    async def title(self, channel: ChannelRef) -> str | None:
        """The channel's current name (asked by id: no username resolution)."""
        ...

    async def latest_id(self, channel: ChannelRef) -> int: ...

    def iter_new(self, channel: ChannelRef, min_id: int) -> AsyncIterator[TgMessage]: ...

    async def get_messages(
        self, channel: ChannelRef, ids: Sequence[int]
    ) -> Sequence[TgMessage | None]: ...

    async def join(self, channel: ChannelRef) -> bool: ...

    def subscribe(self, channel: ChannelRef, handlers: LiveHandlers) -> Callable[[], None]: ...


class TelethonGateway:
    """`TelegramGateway` over one connected, authorised telethon client (shared by sources)."""

    def __init__(self, client: TelegramClient, *, join_interval: float = JOIN_INTERVAL) -> None:
        self.client = client
        self._join_interval = join_interval
        self._join_lock = asyncio.Lock()
        self._last_join = float("-inf")

    async def resolve(self, username: str) -> ChannelRef:
        try:
            entity = await self.client.get_entity(username)
        except ValueError as exc:  # telethon turns USERNAME_NOT_OCCUPIED into ValueError
            raise ChannelUnavailable(f"@{username} does not exist on Telegram") from exc
        if not isinstance(entity, types.Channel):
            raise ChannelUnavailable(f"@{username} is a user or bot, not a channel")
        return ChannelRef(
            int(entity.id),
            int(entity.access_hash or 0),
            not entity.left,
            clean_title(entity.title),
        )

    async def title(self, channel: ChannelRef) -> str | None:
        entity = await self.client.get_entity(_input_peer(channel))
        return clean_title(getattr(entity, "title", None))

    async def latest_id(self, channel: ChannelRef) -> int:
        newest = await self.client.get_messages(_input_peer(channel), limit=1)
        return int(newest[0].id) if newest else 0

    async def iter_new(self, channel: ChannelRef, min_id: int) -> AsyncIterator[TgMessage]:
        peer = _input_peer(channel)
        async for message in self.client.iter_messages(peer, min_id=min_id, reverse=True):
            yield message

    async def get_messages(
        self, channel: ChannelRef, ids: Sequence[int]
    ) -> Sequence[TgMessage | None]:
        found = await self.client.get_messages(_input_peer(channel), ids=list(ids))
        return list(found)

    async def join(self, channel: ChannelRef) -> bool:
        # Joining many channels at once is what gets accounts limited; pace joins globally.
        async with self._join_lock:
            wait = self._last_join + self._join_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                request = functions.channels.JoinChannelRequest(
                    types.InputChannel(channel.id, channel.access_hash)
                )
                await self.client(request)
            except errors.UserAlreadyParticipantError:
                pass
            except errors.ChannelsTooMuchError:
                log.warning(
                    "telegram: this account is in too many channels to join %d; "
                    "it is read by catch-up only",
                    channel.id,
                )
                return False
            finally:
                self._last_join = time.monotonic()
        return True

    def subscribe(self, channel: ChannelRef, handlers: LiveHandlers) -> Callable[[], None]:
        peer = types.PeerChannel(channel.id)

        async def on_event(event: Any) -> None:
            await handle_event(event, handlers, channel.id)

        for builder in (
            events.NewMessage(chats=peer),
            events.Album(chats=peer),
            events.MessageEdited(chats=peer),
            events.MessageDeleted(chats=peer),
        ):
            self.client.add_event_handler(on_event, builder)

        def unsubscribe() -> None:
            self.client.remove_event_handler(on_event)  # every builder of this callback

        return unsubscribe

    async def close(self) -> None:
        await self.client.disconnect()


def _input_peer(channel: ChannelRef) -> Any:
    return types.InputPeerChannel(channel.id, channel.access_hash)


# --- the source -----------------------------------------------------------------------------


def _account_problem(exc: BaseException) -> AccountProblem | None:
    if isinstance(exc, errors.UserDeactivatedBanError):
        return AccountProblem(
            "the Telegram account was banned by Telegram (UserDeactivatedBanError); "
            "telegram sources stop until another account logs in with `dozor login`"
        )
    if isinstance(exc, errors.UserDeactivatedError):
        return AccountProblem(
            "the Telegram account was deleted (UserDeactivatedError); "
            "log in with another account: `dozor login`"
        )
    if isinstance(exc, errors.UnauthorizedError | errors.AuthKeyDuplicatedError):
        return AccountProblem(
            f"the Telegram session is no longer valid ({type(exc).__name__}); "
            "run `dozor login` again"
        )
    return None


def _channel_problem(exc: BaseException, username: str) -> ChannelUnavailable | None:
    if isinstance(exc, errors.ChannelPrivateError):
        return ChannelUnavailable(f"@{username} is private or this account was banned from it")
    if isinstance(exc, errors.UsernameNotOccupiedError | errors.UsernameInvalidError):
        return ChannelUnavailable(f"@{username} does not exist on Telegram")
    if isinstance(exc, errors.ChannelInvalidError):
        return ChannelUnavailable(f"@{username} can no longer be read (ChannelInvalidError)")
    return None


def normalise_username(name: str) -> str:
    """`@name`, `name` or `https://t.me/name` → `name`; ValueError for anything else."""
    name = name.strip()
    for prefix in ("https://t.me/", "http://t.me/", "t.me/", "@"):
        if name.lower().startswith(prefix):
            name = name[len(prefix) :]
    name = name.strip("/")
    if not TELEGRAM_USERNAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a public channel username; write it like telegram:@rybar"
        )
    return name


class TelegramSource:
    """Follows one public channel: live updates plus a periodic catch-up from its cursor."""

    # Each completed catch-up is reported to the feed (`Feed.succeeded`) as a healthy read.
    reports_reads = True

    def __init__(
        self,
        name: str,
        connect: Callable[[], Awaitable[TelegramGateway]],
        *,
        catch_up_interval: float = CATCH_UP_INTERVAL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.username = normalise_username(name)
        self.spec = SourceSpec(KIND, f"@{self.username}")
        self._connect = connect  # returns the shared gateway, connecting on first use
        self.catch_up_interval = catch_up_interval
        self._sleep = sleep  # flood waits go through it (tests pass a fake)

    async def run(self, feed: Feed) -> None:
        try:
            await self._run(feed)
        except (AccountProblem, ChannelUnavailable):
            raise
        except Exception as exc:
            problem = _account_problem(exc) or _channel_problem(exc, self.username)
            if problem is not None:
                raise problem from exc
            raise

    async def _run(self, feed: Feed) -> None:
        gateway = await self._connect()
        cursor = TelegramCursor.load(await feed.cursor())
        stored = cursor
        if cursor.channel_id is None or cursor.access_hash is None:
            channel = await self._patiently("resolving", lambda: gateway.resolve(self.username))
            cursor = replace(
                cursor,
                channel_id=channel.id,
                access_hash=channel.access_hash,
                joined=channel.member,
                title=channel.title or "",
            )
        else:
            channel = ChannelRef(cursor.channel_id, cursor.access_hash, cursor.joined)
        if cursor.title is None:
            # A cursor saved before names were kept: ask once, by id (cheap, no resolving).
            title = await self._patiently("naming", lambda: gateway.title(channel))
            cursor = replace(cursor, title=title or "")
        if not cursor.joined:
            # Live updates come only for joined channels; catch-up works without joining.
            joined = await self._patiently("joining", lambda: gateway.join(channel))
            cursor = replace(cursor, joined=joined)
        if cursor.last_id is None:
            # First run: follow from the newest post rather than alert on the whole history.
            latest = await self._patiently("reading", lambda: gateway.latest_id(channel))
            cursor = replace(cursor, last_id=latest)
        if cursor != stored:
            await feed.advance(cursor.dump())  # the resolved id survives a restart
        log.info(
            "telegram @%s: following channel %d from message %d",
            self.username,
            channel.id,
            cursor.last_id,
        )

        async def lookup(ids: Sequence[int]) -> Sequence[TgMessage | None]:
            return await gateway.get_messages(channel, ids)

        reader = TelegramChannelReader(feed, self.username, cursor, lookup=lookup)
        unsubscribe = gateway.subscribe(channel, reader)
        try:
            while True:
                try:
                    await reader.catch_up(gateway.iter_new(channel, reader.last_id))
                except errors.FloodError as exc:
                    await self._flood_wait(exc, "catching up")
                    continue  # resume from the last post stored before the wait
                # Everything up to now was read: that, not a cursor write, is a healthy read.
                await feed.succeeded()
                await reader.wait_for_catch_up(self.catch_up_interval)
        finally:
            unsubscribe()

    async def _patiently(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Make a call, sleeping through flood waits (this channel only) and retrying."""
        while True:
            try:
                return await call()
            except errors.FloodError as exc:
                await self._flood_wait(exc, what)

    async def _flood_wait(self, exc: BaseException, what: str) -> None:
        # telethon sleeps through short waits itself; what reaches here can be hours long.
        seconds = max(1, int(getattr(exc, "seconds", 60) or 60))
        log.warning(
            "telegram @%s: flood wait of %d s while %s; this channel sleeps, others go on",
            self.username,
            seconds,
            what,
        )
        await self._sleep(seconds)


# --- the client: logging in once, then connecting without prompts ----------------------------


async def login(api_id: int, api_hash: str, session_path: str) -> str:
    """Interactive login for `dozor login`: telethon asks for phone, code and 2FA password."""
    client = TelegramClient(session_path, api_id, api_hash)
    try:
        await client.start()
        me = await client.get_me()
    finally:
        await client.disconnect()
    name = " ".join(part for part in (me.first_name, me.last_name) if part) or str(me.id)
    return f"Logged in as {name}" + (f" (@{me.username})" if me.username else "")


async def client_from_settings(api_id: int, api_hash: str, session_path: str) -> TelegramClient:
    """A connected, authorised client for a saved session; never prompts."""
    client = TelegramClient(session_path, api_id, api_hash)
    await client.connect()
    # A missing, revoked or banned session all look the same here: not authorised.
    if not await client.is_user_authorized():
        await client.disconnect()
        raise AccountProblem(
            f"the Telegram session {session_path!r} is not logged in (missing, revoked or "
            "banned); run `dozor login` first"
        )
    return client


class TelethonConnector:
    """Connects one client on first use and gives every telegram source the same gateway."""

    def __init__(self, api_id: int, api_hash: str, session_path: str) -> None:
        self._settings = (api_id, api_hash, session_path)
        self._gateway: TelethonGateway | None = None
        self._lock = asyncio.Lock()

    async def __call__(self) -> TelethonGateway:
        async with self._lock:
            if self._gateway is None:
                self._gateway = TelethonGateway(await client_from_settings(*self._settings))
            return self._gateway

    async def close(self) -> None:
        if self._gateway is not None:
            await self._gateway.close()
            self._gateway = None
