"""A stand-in Telegram Bot API server for tests, built on aiohttp.

The real aiogram ``Bot`` talks to it over loopback HTTP exactly as it would talk to
``api.telegram.org``::

    async with FakeBotAPI() as api:
        session = AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))
        bot = Bot("42:TEST", session=session)
        api.push_message(1001, "/start")
        ...
        await api.wait_for_sent(1, chat_id=1001)
        await bot.session.close()

Going through real HTTP (instead of mocking ``Bot`` methods) means the tests exercise
aiogram's serialisation, its error classification (``TelegramRetryAfter``,
``TelegramForbiddenError``, ...) and its timeouts, which is where a bot usually breaks
in production.

Behaviour is modelled on the real Bot API, with a few deliberate differences:

* HTML validation is a little *stricter* than Telegram's: a bare ``>`` and an unknown
  named entity such as ``&nbsp;`` are rejected (the Bot API documentation requires
  them to be escaped; the real server tends to show them literally), so missing
  escaping is caught in tests instead of producing odd-looking messages later.
  Nesting rules between entity types (e.g. no bold inside ``<code>``) are not
  enforced, because Telegram silently repairs those rather than failing.
* Implemented: ``getMe``, ``getUpdates``, ``sendMessage``, ``sendPhoto``,
  ``sendDocument``, ``editMessageText``, ``editMessageReplyMarkup``, ``deleteMessage``,
  ``answerCallbackQuery``, ``getChat``, ``getChatMember``, ``getChatAdministrators``,
  ``setMyCommands`` / ``getMyCommands`` / ``deleteMyCommands`` and
  ``setChatMenuButton`` / ``getChatMenuButton``. Every other method answers
  ``{"ok": true, "result": true}``. Inline mode (``inline_message_id``) is not modelled.
* Telegram's exact wording is used for the errors whose text is well known ("message is
  not modified: ...", "message to edit not found", "chat not found", "BUTTON_DATA_INVALID",
  "BOT_COMMAND_INVALID", ...); a few rarer ones ("member list is inaccessible", an
  invalid command ``language_code``) are close approximations. Tests should match on
  the exception class and a distinctive part of the text.
* Uploaded photos must start with the signature of a PNG, JPEG, GIF, WebP or BMP file
  (otherwise "IMAGE_PROCESS_FAILED", as Telegram answers for a non-image); their size
  is not limited.
* Long polling waits at most two seconds, whatever ``timeout`` the client asks for,
  to keep tests fast; ``allowed_updates`` is recorded but not applied.

Everything runs on the event loop of the test that started the server; the
synchronous helpers (``push_update``, ``fail_next``, ...) must be called from that
loop's thread (which is what a plain ``async def`` test does).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import mimetypes
import re
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

from aiohttp import web

from tests.loopback import LoopbackServer

_T = TypeVar("_T")

__all__ = [
    "CallbackAnswer",
    "Edit",
    "FakeBotAPI",
    "FloodControl",
    "HTMLParseError",
    "RejectedCall",
    "SentMessage",
    "buttons",
    "parse_html",
    "parse_html_entities",
    "utf16_len",
]

# Telegram's limit for the text of one message, in UTF-16 code units after entity
# parsing (so "<b>" tags do not count, and an emoji outside the BMP counts twice).
MAX_MESSAGE_LENGTH = 4096

# The limit for a photo's or document's caption, counted the same way.
MAX_CAPTION_LENGTH = 1024

# The largest request body (so upload) accepted, as Telegram's 50 MB for bots.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024

# callback_data of an inline button: 1-64 bytes.
MAX_CALLBACK_DATA_BYTES = 64

# The users Telegram puts in "from" when a message is sent on behalf of a chat: an
# anonymous group admin (sender_chat is the group itself) or a channel.
GROUP_ANONYMOUS_BOT_ID = 1087968824
CHANNEL_BOT_ID = 136817688

# The default user id for people writing in groups (push_message without user_id).
GROUP_USER_ID = 777_000_001

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply "
    "markup are exactly the same as a current content and reply markup of the message"
)

MEMBER_STATUSES = frozenset({"creator", "administrator", "member", "restricted", "left", "kicked"})

# Real getUpdates may hold a request for up to 50 s; tests should not wait that long.
MAX_LONG_POLL_SECONDS = 2.0

# Telegram's flood limits ("My bot is hitting limits" in the Bot API FAQ) are counted
# over these windows, in seconds; see FloodControl for the exact rule.
GLOBAL_WINDOW = 1.0
PRIVATE_WINDOW = 1.0
GROUP_WINDOW = 60.0
# How much earlier than a full window an old message stops counting by default, so that a
# client pacing itself exactly at a limit is not refused for a few milliseconds of jitter.
# Telegram grants no such tolerance: pass ``tolerance=0`` to count windows exactly.
LIMIT_TOLERANCE = 0.02

# Tags the Bot API accepts with parse_mode=HTML (see "HTML style" in the Bot API docs).
_ALLOWED_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "code",
        "pre",
        "tg-spoiler",
        "span",
        "blockquote",
        "tg-emoji",
    }
)

_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}

# A command as Telegram recognises it at the start of a message: "/name" (up to 32
# letters, digits or underscores) optionally followed by "@botusername".
_BOT_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")

# "/bot<token>/<method>"; anything else (including the file download path) is a 404.
_PATH_RE = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z0-9_]+)$")

# What an nginx-style proxy in front of a dead backend answers: HTML, not JSON.
_PROXY_ERROR_BODY = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n"
    "<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


# The entity type each HTML tag produces ("code" inside "pre" only sets its language).
_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}

# The fields of an InlineKeyboardButton that give it an action; exactly one is required.
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)

# BotCommand.command: 1-32 lowercase English letters, digits and underscores.
_COMMAND_NAME_RE = re.compile(r"[a-z0-9_]{1,32}")
_LANGUAGE_CODE_RE = re.compile(r"[a-z]{2}")

# File signatures of the image formats Telegram accepts as a photo.
_IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")


@dataclass
class SentMessage:
    """One message the fake accepted (answered with HTTP 200) from a ``send*`` call.

    ``sendMessage``, ``sendPhoto`` and ``sendDocument`` are recorded; for the latter two
    ``text`` and ``visible_text`` hold the caption ("" without one), and ``file`` and
    ``filename`` the uploaded bytes (None when the photo was given by file_id or URL).
    The object keeps what was *sent*; later edits are in :attr:`FakeBotAPI.edits` and
    :meth:`FakeBotAPI.current` gives the message as it is now.
    """

    method: str
    chat_id: int
    text: str  # the raw text as sent (the HTML source when parse_mode is HTML)
    parse_mode: str | None
    params: dict[str, str]  # every form field as received
    at: float  # time.monotonic() when accepted
    # Extras beyond what a caller must supply; defaulted so the class stays easy to build.
    visible_text: str = ""  # the text with tags removed and entities decoded
    message_id: int = 0  # the message_id the fake answered with
    reply_markup: dict[str, Any] | None = None  # the parsed reply_markup JSON, if any
    file: bytes | None = None  # sendPhoto / sendDocument: the uploaded bytes
    filename: str | None = None  # ... and the uploaded file's name

    @property
    def accepted_at(self) -> float:
        """Same as :attr:`at`: the ``time.monotonic()`` at which the fake accepted it."""
        return self.at

    @property
    def caption(self) -> str | None:
        """The caption source of a photo or document (None for a text message)."""
        return None if self.method.lower() == "sendmessage" else self.text


@dataclass
class Edit:
    """One accepted ``editMessageText`` or ``editMessageReplyMarkup`` call."""

    method: str
    chat_id: int
    message_id: int
    text: str | None  # the new raw text; None for editMessageReplyMarkup
    parse_mode: str | None
    reply_markup: dict[str, Any] | None  # the new markup (None: the keyboard was removed)
    params: dict[str, str]
    at: float  # time.monotonic() when accepted
    visible_text: str | None = None  # the new text as shown; None for a markup-only edit


@dataclass
class CallbackAnswer:
    """One ``answerCallbackQuery`` call (the toast or alert a button press shows)."""

    query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None
    params: dict[str, str]
    at: float  # time.monotonic() when received


@dataclass
class _Upload:
    """A file that arrived in a multipart request, or one the fake stored by file_id."""

    filename: str
    data: bytes


class _ApiError(Exception):
    """An error answer, raised by the method implementations and sent by ``_answer``."""

    def __init__(self, status: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def _bad_request(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


def buttons(message: SentMessage | dict[str, Any] | None) -> list[list[tuple[str, str]]]:
    """The inline keyboard of a message (or of a reply_markup dict) as rows of pairs.

    Each button is ``(text, callback_data)``; a button without callback_data gives its
    ``url`` instead ("" if it has neither). No keyboard gives ``[]``.
    """
    markup = message.reply_markup if isinstance(message, SentMessage) else message
    if not markup:
        return []
    rows = markup.get("inline_keyboard") or []
    return [
        [(str(b.get("text", "")), str(b.get("callback_data") or b.get("url") or "")) for b in row]
        for row in rows
    ]


@dataclass
class _FailRule:
    """A queued error installed by :meth:`FakeBotAPI.fail_next`."""

    method: str  # lower-cased, because Telegram method names are case-insensitive
    status: int
    description: str
    retry_after: int | None
    chat_id: int | None
    remaining: int


@dataclass
class RejectedCall:
    """A call the fake answered with an error (see ``FakeBotAPI.rejected``)."""

    method: str
    params: dict[str, str]
    status: int
    description: str


class FloodControl:
    """Telegram's flood limits, as sliding windows over *accepted* messages.

    An earlier accepted message sent at ``t`` is *in the window* of length ``w`` at
    ``now`` when ``now - t < w - tolerance`` (by default ``LIMIT_TOLERANCE``, 0.02 s;
    with ``tolerance=0`` the windows are exact, as Telegram's). A message to ``chat_id``
    arriving at ``now`` is refused when accepting it would put more than a limit in
    a window, that is when already in the window there are:

    * ``global_per_second`` messages to any chat, with ``w`` = 1.0 s; or
    * ``private_per_second`` messages to that chat if ``chat_id > 0`` (a private
      chat), with ``w`` = 1.0 s; or
    * ``group_per_minute`` messages to that chat if ``chat_id < 0`` (a group,
      supergroup or channel), with ``w`` = 60.0 s.

    Refused messages are not recorded, so they do not count against later ones.

    So with the default tolerance a client spacing its messages evenly at exactly the
    limit (every 1/30 s overall, every 1.0 s to one private chat, every 3.0 s to one
    group) is never refused, even with up to 20 ms of jitter, while a burst of 31
    messages within 0.98 s, two to one private chat within 0.98 s, or 21 to one group
    within 59.98 s is refused. With ``tolerance=0`` any 31 messages within 1.0 s are
    refused, however they were meant to be spaced: a client needs headroom for jitter.
    ``now`` must not decrease from one call to the next (use ``time.monotonic()``).
    """

    def __init__(
        self,
        *,
        global_per_second: int = 30,
        private_per_second: int = 1,
        group_per_minute: int = 20,
        tolerance: float = LIMIT_TOLERANCE,
    ) -> None:
        if not 0.0 <= tolerance < PRIVATE_WINDOW:
            raise ValueError("tolerance must be at least 0 and below 1 s")
        for name, value in (
            ("global_per_second", global_per_second),
            ("private_per_second", private_per_second),
            ("group_per_minute", group_per_minute),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1")
        self.global_per_second = global_per_second
        self.private_per_second = private_per_second
        self.group_per_minute = group_per_minute
        self.tolerance = tolerance
        self._all: deque[float] = deque()
        self.refused: list[str] = []  # why each refused message was refused
        self._by_chat: dict[int, deque[float]] = {}

    def admit(self, chat_id: int, now: float) -> bool:
        """Record a message to ``chat_id`` at ``now`` and return True if within limits.

        Returns False, recording nothing, if the message breaks a limit.
        """
        if self._in_window(self._all, now, GLOBAL_WINDOW) >= self.global_per_second:
            times = [*self._all, now]
            gaps = sorted(
                round(later - earlier, 3) for earlier, later in itertools.pairwise(times)
            )
            self.refused.append(
                f"{self.global_per_second + 1} in a second (chat {chat_id}):"
                f" {times[-1] - times[0]:.3f} s from first to last, closest gaps {gaps[:4]}"
            )
            return False
        chat = self._by_chat.get(chat_id)
        if chat is not None:
            if chat_id > 0:
                if self._in_window(chat, now, PRIVATE_WINDOW) >= self.private_per_second:
                    self.refused.append(f"chat {chat_id}: {now - chat[-1]:.3f} s after its last")
                    return False
            elif chat_id < 0 and self._in_window(chat, now, GROUP_WINDOW) >= self.group_per_minute:
                self.refused.append(f"group {chat_id}: over {self.group_per_minute} a minute")
                return False
        self.record(chat_id, now)
        return True

    def record(self, chat_id: int, at: float) -> None:
        """Count a message to ``chat_id`` accepted at ``at`` without checking the limits."""
        self._all.append(at)
        self._by_chat.setdefault(chat_id, deque()).append(at)

    def _in_window(self, times: deque[float], now: float, window: float) -> int:
        """Drop the times that no longer count at ``now``; return how many still do."""
        horizon = now - (window - self.tolerance)
        while times and times[0] <= horizon:
            times.popleft()
        return len(times)


class HTMLParseError(ValueError):
    """Raised by :func:`parse_html`; the message is Telegram's short reason."""


class _Signal:
    """Wakes every coroutine currently waiting, each time :meth:`notify` is called.

    A fresh ``asyncio.Event`` is swapped in after each notification, so a waiter that
    starts waiting afterwards is not woken by an old notification. Events are created
    lazily-bound (Python 3.10+), so the object can be made outside a running loop.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> bool:
        """Wait for the next notification; return False if ``seconds`` passed first."""
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), max(seconds, 0.0))
        except TimeoutError:
            return False
        return True


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit Telegram measures text in."""
    return len(text.encode("utf-16-le", errors="surrogatepass")) // 2


def _byte_offset(text: str, pos: int) -> int:
    # Telegram reports positions in parse errors as UTF-8 byte offsets.
    return len(text[:pos].encode("utf-8", errors="surrogatepass"))


def _decode_entity(text: str, pos: int) -> tuple[str | None, int]:
    """Decode an HTML entity starting at ``text[pos] == "&"``.

    Returns ``(character, next_pos)``, or ``(None, pos + 1)`` when the ``&`` does not
    start an entity and so is kept literally (Telegram tolerates ``"Q&A"`` or
    ``"a & b"``). Like Telegram, the terminating ``;`` is optional. Raises
    :class:`HTMLParseError` for an unsupported named entity written out in full
    (``&nbsp;``) and for a numeric reference to an impossible code point.
    """
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        is_hex = end < n and text[end] in "xX"
        if is_hex:
            end += 1
        digits_start = end
        allowed = "0123456789abcdefABCDEF" if is_hex else "0123456789"
        while end < n and text[end] in allowed:
            end += 1
        digits = text[digits_start:end]
        if not digits:
            return None, pos + 1  # "&#hashtag" is just text
        code = int(digits, 16 if is_hex else 10)
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise HTMLParseError(
                f'Invalid numeric character reference "{text[pos:end]}" '
                f"at byte offset {_byte_offset(text, pos)}"
            )
        char = chr(code)
    else:
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        name = text[pos + 1 : end]
        if name not in _NAMED_ENTITIES:
            if name and end < n and text[end] == ";":
                raise HTMLParseError(
                    f'Unsupported HTML entity "&{name};" at byte offset {_byte_offset(text, pos)}'
                )
            return None, pos + 1
        char = _NAMED_ENTITIES[name]
    if end < n and text[end] == ";":
        end += 1
    return char, end


def _check_tag(text: str, begin: int, name: str, attrs: dict[str, str]) -> None:
    """Tag-specific rules; unknown attributes are ignored, as Telegram does."""
    offset = _byte_offset(text, begin)
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise HTMLParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
    if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
        raise HTMLParseError(f"Custom emoji identifier expected at byte offset {offset}")


def parse_html(text: str) -> str:
    """Validate ``text`` as Telegram HTML and return the visible text.

    A hand-written scanner rather than ``html.parser``, because the standard parser
    accepts almost anything (unknown tags, unclosed tags, stray ``<``) while Telegram
    refuses the whole message. Error messages follow Telegram's wording where known.
    """
    return parse_html_entities(text)[0]


def parse_html_entities(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Like :func:`parse_html`, but also return the MessageEntity dicts Telegram makes.

    Offsets and lengths are in UTF-16 code units; empty entities are dropped; entities
    are ordered by offset, the outer one first. ``<pre><code class="language-x">``
    becomes one ``pre`` entity with ``language`` "x", as in Telegram.
    """
    out: list[str] = []
    stack: list[str] = []  # open tags, innermost last
    # For each open tag: its attributes, where it started (UTF-16 units) and, for
    # "pre", the language a nested "code" gave it.
    opened: list[tuple[dict[str, str], int, list[str]]] = []
    entities: list[dict[str, Any]] = []
    pos16 = 0  # UTF-16 length of the visible text so far
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c == "&":
            char, i = _decode_entity(text, i)
            piece = "&" if char is None else char
            out.append(piece)
            pos16 += 2 if ord(piece) > 0xFFFF else 1
            continue
        if c == ">":
            # Telegram itself shows a stray ">" literally, but its documentation asks
            # for "&gt;"; rejecting it catches text that was never escaped.
            raise HTMLParseError(f'Unescaped ">" at byte offset {_byte_offset(text, i)}')
        if c != "<":
            out.append(c)
            pos16 += 2 if ord(c) > 0xFFFF else 1
            i += 1
            continue

        begin = i
        i += 1
        if i < n and text[i] == "/":
            # End tag: "</b>", or "</>" which closes whatever is open innermost.
            i += 1
            name_start = i
            while i < n and not text[i].isspace() and text[i] != ">":
                i += 1
            end_name = text[name_start:i].lower()
            while i < n and text[i].isspace():
                i += 1
            if i >= n or text[i] != ">":
                offset = _byte_offset(text, begin)
                raise HTMLParseError(f"Unclosed end tag at byte offset {offset}")
            i += 1
            if not stack:
                raise HTMLParseError(
                    f"Unexpected end tag at byte offset {_byte_offset(text, begin)}"
                )
            expected = stack.pop()
            if end_name and end_name != expected:
                raise HTMLParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                    f'expected "</{expected}>", found "</{end_name}>"'
                )
            attrs, start, language = opened.pop()
            entity = _make_entity(expected, attrs, start, pos16 - start, language, stack, opened)
            if entity is not None:
                entities.append(entity)
            continue

        # Start tag. The name runs up to whitespace or ">", so "a < b" yields the
        # empty name and "<br/>" the name "br/", both unsupported, as in Telegram.
        name_start = i
        while i < n and not text[i].isspace() and text[i] != ">":
            i += 1
        if i >= n:
            raise HTMLParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        name = text[name_start:i].lower()
        if name not in _ALLOWED_TAGS:
            raise HTMLParseError(
                f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, begin)}'
            )
        attrs, i = _parse_attributes(text, i, begin, name)
        _check_tag(text, begin, name, attrs)
        stack.append(name)
        opened.append((attrs, pos16, []))

    if stack:
        raise HTMLParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _make_entity(
    name: str,
    attrs: dict[str, str],
    offset: int,
    length: int,
    language: list[str],
    stack: list[str],
    opened: list[tuple[dict[str, str], int, list[str]]],
) -> dict[str, Any] | None:
    """The entity a just-closed tag produces, or None (empty, or merged into its parent).

    ``stack`` and ``opened`` are the tags still open around it, innermost last.
    """
    if name == "code" and stack and stack[-1] == "pre":
        css = attrs.get("class", "")
        if css.startswith("language-") and len(css) > len("language-"):
            opened[-1][2].append(css[len("language-") :])
        return None
    if length <= 0:
        return None
    kind = _ENTITY_TYPES[name]
    entity: dict[str, Any] = {"type": kind, "offset": offset, "length": length}
    if name == "a":
        href = attrs.get("href")
        if not href:
            return None
        entity["url"] = href
    elif name == "pre" and language:
        entity["language"] = language[0]
    elif name == "blockquote" and "expandable" in attrs:
        entity["type"] = "expandable_blockquote"
    elif name == "tg-emoji":
        entity["custom_emoji_id"] = attrs["emoji-id"]
    return entity


def _parse_attributes(text: str, i: int, begin: int, tag: str) -> tuple[dict[str, str], int]:
    """Parse attributes from ``text[i]`` up to and including the closing ``>``.

    Returns the attributes (names lower-cased) and the position just after ``>``.
    """
    n = len(text)
    attrs: dict[str, str] = {}

    def unclosed() -> HTMLParseError:
        return HTMLParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")

    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            raise unclosed()
        if text[i] == ">":
            return attrs, i + 1
        name_start = i
        while i < n and not text[i].isspace() and text[i] not in "=>":
            i += 1
        attr_name = text[name_start:i].lower()
        if not attr_name:
            raise HTMLParseError(
                f'Empty attribute name in the tag "{tag}" at byte offset '
                f"{_byte_offset(text, begin)}"
            )
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            raise unclosed()
        if text[i] != "=":
            # A value-less attribute such as <blockquote expandable>.
            attrs[attr_name] = ""
            continue
        i += 1
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            raise unclosed()
        if text[i] in "\"'":
            quote = text[i]
            i += 1
            value: list[str] = []
            while i < n and text[i] != quote:
                if text[i] == "&":
                    char, i = _decode_entity(text, i)
                    value.append("&" if char is None else char)
                else:
                    value.append(text[i])
                    i += 1
            if i >= n:
                raise unclosed()
            i += 1
            attrs[attr_name] = "".join(value)
        else:
            # An unquoted value is an SGML name token: letters, digits, "." and "-".
            token_start = i
            while i < n and (text[i].isalnum() or text[i] in ".-"):
                i += 1
            if i >= n:
                raise unclosed()
            if not text[i].isspace() and text[i] != ">":
                offset = _byte_offset(text, token_start)
                raise HTMLParseError(f"Unexpected end of name token at byte offset {offset}")
            attrs[attr_name] = text[token_start:i].lower()


def _command_entities(text: str) -> list[dict[str, Any]]:
    """The ``bot_command`` entity Telegram attaches to a message starting with "/"."""
    match = _BOT_COMMAND_RE.match(text)
    if match is None:
        return []
    end = match.end()
    if end < len(text) and not text[end].isspace():
        return []  # "/start-now" or "/ab?c" is not a command
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(match.group())}]


class FakeBotAPI(LoopbackServer):
    """An in-process Telegram Bot API server on ``127.0.0.1`` for aiogram tests.

    It records every call in :attr:`calls` and every accepted message (``sendMessage``,
    ``sendPhoto``, ``sendDocument``) in :attr:`sent`, serves updates queued with
    :meth:`push_update` / :meth:`push_message` / :meth:`push_callback` /
    :meth:`push_my_chat_member` through ``getUpdates`` long polling, and can be told to
    misbehave the way the real API does (rate limits, blocked users, a dead proxy, slow
    answers). Every error it answered is also kept in :attr:`rejected`, with the
    description it sent.

    Further records: :attr:`edits` (accepted ``editMessageText`` /
    ``editMessageReplyMarkup``), :attr:`callback_answers` (``answerCallbackQuery``),
    :attr:`deleted` (``deleteMessage``), :attr:`callback_queries` (queries pushed with
    :meth:`push_callback`, by id), :attr:`menu_buttons` (``setChatMenuButton``) and
    :meth:`commands` (``setMyCommands``). :meth:`current` gives a message as it is now,
    after its edits.

    Error precedence for ``sendMessage`` is: :meth:`set_unavailable`, then
    :meth:`fail_next` rules, then the chat (unknown "@username", :meth:`block_chat`,
    the bot removed from the group or not an administrator of the channel), then text
    validation, then the reply markup, then the flood limits of :meth:`enforce_limits`.
    ``sendPhoto``, ``sendDocument`` and the edits follow the same order.

    Counters for tests and benchmarks: :attr:`limit_hits` (429s answered because of
    :meth:`enforce_limits`), :attr:`in_flight` and :attr:`most_in_flight` (``send*``
    requests being handled now, and the most at any one time). They are plain
    attributes: assign 0 to reset them.
    """

    def __init__(
        self,
        *,
        bot_id: int = 4242,
        bot_username: str = "dozor_test_bot",
        token: str | None = None,
    ) -> None:
        """Create a stopped server.

        ``token``, when given, is the only token accepted; requests with another one get
        401 "Unauthorized", as Telegram answers for a revoked token. By default any
        token is accepted.
        """
        super().__init__()
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.token = token
        self.sent: list[SentMessage] = []
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.rejected: list[RejectedCall] = []
        self.edits: list[Edit] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.deleted: list[tuple[int, int]] = []  # (chat_id, message_id) per deleteMessage
        # The callback_query objects pushed by push_callback, by query id.
        self.callback_queries: dict[str, dict[str, Any]] = {}
        # setChatMenuButton: the button per chat_id (None: the bot's default button).
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}

        self._updates: list[dict[str, Any]] = []  # pushed and not yet confirmed
        # Telegram update ids are large and increase; start somewhere non-trivial so a
        # client that wrongly sends offset=0 or offset=1 is not accidentally right.
        self._next_update_id = 100_000
        self._served_update_id = 0  # the highest update_id getUpdates has answered with
        self._next_message_id = 1
        # Chats seen in push_message (or registered), so answers describe them consistently.
        self._chats: dict[int, dict[str, Any]] = {}
        # Every message that still exists, as Telegram would send it now (after edits):
        # the bot's own and the pushed ones, by (chat_id, message_id).
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        # The bot's own messages as SentMessage records updated by edits (see current()).
        self._current: dict[tuple[int, int], SentMessage] = {}
        self._members: dict[tuple[int, int], dict[str, Any]] = {}  # set_member, by (chat, user)
        self._users: dict[int, dict[str, Any]] = {}  # people seen in pushed updates
        self._answered: set[str] = set()  # callback queries answered
        self._commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self._files: dict[str, dict[str, Any]] = {}  # file_id -> its media JSON
        self._next_file_number = 1
        self._fail_rules: list[_FailRule] = []
        self._blocked: set[int] = set()
        self._migrated: dict[int, int] = {}  # migrate_chat: old group id -> supergroup id
        self._unavailable: int | None = None
        self._delay = 0.0
        self._send_latency = 0.0
        self._flood: FloodControl | None = None
        self._flood_retry_after = 1
        self._limit_edits = True
        self.limit_hits = 0
        self.in_flight = 0
        self.most_in_flight = 0

        self._updates_signal = _Signal()
        self._sent_signal = _Signal()
        self._edits_signal = _Signal()
        self._answers_signal = _Signal()

        # The methods implemented beyond getMe / getUpdates, by lower-cased name.
        self._methods: dict[str, Callable[[str, dict[str, str], dict[str, _Upload]], Any]] = {
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "senddocument": self._send_document,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "deletemessage": self._delete_message,
            "answercallbackquery": self._answer_callback_query,
            "getchat": self._get_chat,
            "getchatmember": self._get_chat_member,
            "getchatadministrators": self._get_chat_administrators,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "setchatmenubutton": self._set_chat_menu_button,
            "getchatmenubutton": self._get_chat_menu_button,
        }

    # ------------------------------------------------------------------ lifecycle

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    async def stop(self) -> None:
        """Stop serving; returns promptly even while a long poll is waiting."""
        if self._runner is not None:
            self._closing.set()
            # Wake pending getUpdates so they answer [] instead of holding the shutdown.
            self._updates_signal.notify()
        await super().stop()

    # ------------------------------------------------------------ test controls

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue ``update`` for ``getUpdates``; assign ``update_id`` if missing; return it."""
        update = dict(update)
        if "update_id" in update:
            update_id = int(update["update_id"])
            self._next_update_id = max(self._next_update_id, update_id + 1)
        else:
            update_id = self._next_update_id
            self._next_update_id += 1
            update["update_id"] = update_id
        self._updates.append(update)
        self._updates.sort(key=lambda u: int(u["update_id"]))
        self._updates_signal.notify()
        return update_id

    def push_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        first_name: str = "Tester",
        username: str | None = None,
        chat_type: str = "private",
        language_code: str | None = "en",
        forward_origin: dict[str, Any] | None = None,
        sender_chat: dict[str, Any] | None = None,
        reply_to_message_id: int | None = None,
    ) -> int:
        """Queue an Update carrying a text Message from a user; return its update_id.

        In a private chat the user id defaults to the chat id (as in Telegram); in a
        group it defaults to a fixed test user. A text starting with a command gets the
        ``bot_command`` entity Telegram would attach. A group registered earlier (with
        :meth:`add_chat`, say) keeps its title if ``chat_type`` matches.

        ``language_code`` is the user's app language (None leaves the field out, as for
        a user who hides it). ``forward_origin`` makes the message a forward: a
        MessageOrigin dict such as ``{"type": "channel", "chat": {...}, "message_id": 5,
        "date": 1700000000}``. ``sender_chat`` makes it a message sent on behalf of a
        chat: of the group itself (an anonymous admin), when Telegram sets ``from`` to
        GroupAnonymousBot (id 1087968824), or of a channel, when ``from`` is Channel_Bot
        (id 136817688); ``user_id``, ``first_name``, ``username`` and ``language_code``
        then do not apply. :meth:`chat` gives a chat's dict for these options.
        ``reply_to_message_id`` makes it a reply to that message of the chat (the bot's
        or a pushed one), included as ``reply_to_message``; an unknown id is left out,
        as Telegram does when the replied message was deleted.
        """
        if user_id is None:
            user_id = chat_id if chat_type == "private" else GROUP_USER_ID
        if sender_chat is not None:
            user = _service_user(sender_chat, chat_id)
        else:
            user = self._person(user_id, first_name, username, language_code)
        if chat_type == "private":
            chat: dict[str, Any] = {"id": chat_id, "type": "private", "first_name": first_name}
            if username is not None:
                chat["username"] = username
        else:
            known = self._chats.get(chat_id)
            if known is not None and known.get("type") == chat_type:
                chat = dict(known)
            else:
                chat = {"id": chat_id, "type": chat_type, "title": f"Test {chat_type} {chat_id}"}
        self._chats[chat_id] = dict(chat)
        message: dict[str, Any] = {
            "message_id": self._take_message_id(),
            "from": user,
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        if sender_chat is not None:
            message["sender_chat"] = dict(sender_chat)
        if forward_origin is not None:
            message["forward_origin"] = dict(forward_origin)
        if reply_to_message_id is not None:
            replied = self._messages.get((chat_id, reply_to_message_id))
            if replied is not None:
                replied = dict(replied)
                replied.pop("reply_to_message", None)  # Telegram does not nest replies
                message["reply_to_message"] = replied
        return self._push_text(chat_id, message, "message")

    def push_channel_post(
        self,
        chat_id: int,
        text: str,
        *,
        title: str | None = None,
        username: str | None = None,
        author_signature: str | None = None,
    ) -> int:
        """Queue a ``channel_post`` update: ``text`` posted in channel ``chat_id``.

        Bots only receive the posts of channels they administer, so the channel is
        registered (as by :meth:`add_channel`) if it is not yet and the bot is made an
        administrator of it unless :meth:`set_member` said otherwise.
        """
        chat = self._chats.get(chat_id)
        if chat is None or chat.get("type") != "channel":
            chat = self.add_chat(chat_id, "channel", title=title, username=username)
        self._members.setdefault((chat_id, self.bot_id), {"status": "administrator"})
        message: dict[str, Any] = {
            "message_id": self._take_message_id(),
            "sender_chat": dict(chat),
            "chat": dict(chat),
            "date": int(time.time()),
            "text": text,
        }
        if author_signature is not None:
            message["author_signature"] = author_signature
        return self._push_text(chat_id, message, "channel_post")

    def _push_text(self, chat_id: int, message: dict[str, Any], kind: str) -> int:
        """Queue a text message as an update of `kind`, with the ``bot_command`` entity
        Telegram would attach, remembered for later replies, presses and edits."""
        entities = _command_entities(message["text"])
        if entities:
            message["entities"] = entities
        self._messages[(chat_id, message["message_id"])] = message
        return self.push_update({kind: message})

    def push_callback(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        user_id: int | None = None,
        first_name: str = "Tester",
        language_code: str | None = "en",
        chat_type: str | None = None,
        check_button: bool = True,
    ) -> int:
        """Queue a ``callback_query`` update: a user presses a button; return its update_id.

        The message must be one the bot sent to ``chat_id`` (and not deleted); the
        update carries it as Telegram would: its current text (or caption), entities
        and inline keyboard. With ``check_button`` (the default) ``data`` must be the
        ``callback_data`` of one of its current buttons, since Telegram only delivers
        presses of real buttons; otherwise ValueError lists the buttons. The query id is
        ``str(update_id)``; the query is kept in :attr:`callback_queries`.

        ``user_id`` defaults as in :meth:`push_message`. ``chat_type``, when given, must
        match the chat's type (a guard against pressing in the wrong chat).
        """
        key = (chat_id, message_id)
        message = self._messages.get(key)
        if message is None or key not in self._current:
            raise LookupError(
                f"the bot has no message {message_id} in chat {chat_id}; its messages "
                f"there: {sorted(m for c, m in self._current if c == chat_id)}"
            )
        chat = message["chat"]
        if chat_type is not None and chat_type != chat["type"]:
            raise ValueError(f"chat {chat_id} is a {chat['type']} chat, not {chat_type}")
        if check_button:
            rows = buttons(message.get("reply_markup"))
            if not any(data == b.get("callback_data") for b in _all_buttons(message)):
                raise ValueError(
                    f"message {message_id} in chat {chat_id} has no button with "
                    f"callback_data {data!r}; its buttons: {rows}"
                )
        if user_id is None:
            user_id = chat_id if chat["type"] == "private" else GROUP_USER_ID
        known = self._users.get(user_id, {})
        if first_name == "Tester":  # the default: keep the name the user was pushed with
            first_name = known.get("first_name", first_name)
        user = self._person(user_id, first_name, known.get("username"), language_code)
        update_id = self._next_update_id
        query_id = str(update_id)
        query: dict[str, Any] = {
            "id": query_id,
            "from": user,
            "message": dict(message),
            "chat_instance": str(7_000_000_000 + abs(chat_id)),
            "data": data,
        }
        self.callback_queries[query_id] = query
        return self.push_update({"update_id": update_id, "callback_query": query})

    def push_my_chat_member(
        self,
        chat_id: int,
        *,
        chat_type: str = "supergroup",
        title: str | None = None,
        username: str | None = None,
        old_status: str = "left",
        new_status: str = "member",
        by_user_id: int | None = None,
        first_name: str = "Tester",
        language_code: str | None = "en",
    ) -> int:
        """Queue a ``my_chat_member`` update: the bot's own status in a chat changed.

        The defaults describe the bot being added to a supergroup; ``new_status="left"``
        or ``"kicked"`` removes it, ``"administrator"`` with ``chat_type="channel"``
        makes it a channel admin. ``by_user_id`` (who did it) defaults to the chat id
        for a private chat and to the usual group test user otherwise. The bot's status
        is remembered: ``getChatMember`` answers with it, and sending to a group the bot
        left or was kicked from fails with 403 as in Telegram. In a private chat,
        ``new_status="kicked"`` is the user blocking the bot (:meth:`block_chat`) and
        ``"member"`` unblocking it.
        """
        for status in (old_status, new_status):
            _check_status(status)
        if chat_type == "private":
            chat = self.add_chat(chat_id, "private", first_name=first_name, username=username)
            by = chat_id if by_user_id is None else by_user_id
        else:
            known = self._chats.get(chat_id)
            if known is not None and known.get("type") == chat_type and title is None:
                chat = dict(known)
            else:
                chat = self.add_chat(chat_id, chat_type, title=title, username=username)
            by = GROUP_USER_ID if by_user_id is None else by_user_id
        actor = self._person(by, first_name, None, language_code)
        old = self._member_json(chat, self.bot_id, {"status": old_status})
        self._members[(chat_id, self.bot_id)] = {"status": new_status}
        new = self._member_json(chat, self.bot_id, {"status": new_status})
        if chat_type == "private":
            if new_status == "kicked":
                self.block_chat(chat_id)
            elif new_status == "member":
                self.unblock_chat(chat_id)
        return self.push_update(
            {
                "my_chat_member": {
                    "chat": chat,
                    "from": actor,
                    "date": int(time.time()),
                    "old_chat_member": old,
                    "new_chat_member": new,
                }
            }
        )

    def add_chat(
        self,
        chat_id: int,
        chat_type: str = "supergroup",
        *,
        title: str | None = None,
        username: str | None = None,
        first_name: str = "Tester",
    ) -> dict[str, Any]:
        """Register a chat: answers describe it this way and ``getChat`` finds it.

        Returns its Chat dict. A ``username`` ("name" or "@name") makes it findable as
        "@name" too. Registering again replaces the description.
        """
        if chat_type == "private":
            chat: dict[str, Any] = {"id": chat_id, "type": "private", "first_name": first_name}
        else:
            chat = {
                "id": chat_id,
                "type": chat_type,
                "title": title or f"Test {chat_type} {chat_id}",
            }
        if username:
            chat["username"] = username.removeprefix("@")
        self._chats[chat_id] = chat
        return dict(chat)

    def add_channel(
        self, chat_id: int, username: str | None, title: str, *, bot_status: str = "left"
    ) -> dict[str, Any]:
        """Register a channel (public when ``username`` is given); return its Chat dict.

        ``bot_status`` is the bot's own status there: "left" (the default) for a channel
        the bot only reads about, "administrator" for one it may post to (sending to a
        channel where the bot is not an administrator fails, as in Telegram).
        """
        chat = self.add_chat(chat_id, "channel", title=title, username=username)
        self.set_member(chat_id, self.bot_id, bot_status)
        return chat

    def set_member(self, chat_id: int, user_id: int, status: str, **fields: Any) -> None:
        """Set ``user_id``'s status in ``chat_id`` for getChatMember / getChatAdministrators.

        ``status`` is one of creator, administrator, member, restricted, left, kicked;
        ``fields`` override parts of the ChatMember JSON (``can_post_messages=False``,
        ``custom_title="boss"``, ...). Use ``api.bot_id`` as ``user_id`` for the bot.
        """
        _check_status(status)
        self._members[(chat_id, user_id)] = {"status": status, **fields}

    def fail_next(
        self,
        method: str,
        *,
        status: int,
        description: str,
        retry_after: int | None = None,
        chat_id: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (to ``chat_id``, if given) fail.

        The answer is ``{"ok": false, "error_code": status, "description": ...}`` plus
        ``"parameters": {"retry_after": N}`` when ``retry_after`` is given.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        self._fail_rules.append(
            _FailRule(method.lower(), status, description, retry_after, chat_id, times)
        )

    def block_chat(self, chat_id: int) -> None:
        """Every later send or edit to ``chat_id`` gets 403 "bot was blocked by the user"."""
        self._blocked.add(chat_id)

    def unblock_chat(self, chat_id: int) -> None:
        """The user unblocked the bot: sends to ``chat_id`` are accepted again."""
        self._blocked.discard(chat_id)

    def migrate_chat(self, old_id: int, new_id: int) -> None:
        """The group ``old_id`` became the supergroup ``new_id``: every later ``send*`` call
        to ``old_id`` gets 400 "Bad Request: group chat was upgraded to a supergroup chat"
        with ``"parameters": {"migrate_to_chat_id": new_id}``, as in Telegram (aiogram
        raises ``TelegramMigrateToChat``). The service messages are not pushed."""
        self._migrated[old_id] = new_id

    def set_unavailable(self, status: int | None) -> None:
        """Answer every call with ``status`` and an HTML body (like a proxy); None restores."""
        self._unavailable = status

    def set_delay(self, seconds: float) -> None:
        """Sleep ``seconds`` before answering each sendMessage (0 disables).

        The message is still accepted and recorded after the delay even if the client
        gave up, as a real server would deliver it: useful to test duplicate sends.
        """
        self._delay = max(0.0, seconds)

    def set_send_latency(self, seconds: float) -> None:
        """Hold the answer to every ``send*`` call for ``seconds`` (0 disables).

        Emulates the network round trip to Telegram: the call is decided (and a message
        accepted, with its ``at`` and the flood limits taking the arrival time) at once,
        and only the answer, error or not, is held back. Each request waits on its own,
        so requests in flight overlap instead of queueing; :attr:`most_in_flight` shows
        how many did. Other methods (``getUpdates``, ``getMe``, ...) are not delayed.
        Combines with :meth:`set_delay`, which delays the decision itself.
        """
        self._send_latency = max(0.0, seconds)

    def enforce_limits(
        self,
        *,
        global_per_second: int = 30,
        private_per_second: int = 1,
        group_per_minute: int = 20,
        retry_after: int = 1,
        tolerance: float = LIMIT_TOLERANCE,
        limit_edits: bool = True,
    ) -> None:
        """From now on, refuse messages that break Telegram's flood limits.

        A refused call gets HTTP 429 with ``{"ok": false, "error_code": 429,
        "description": "Too Many Requests: retry after N", "parameters":
        {"retry_after": N}}`` (N is ``retry_after``), which aiogram raises as
        ``TelegramRetryAfter``, and adds one to :attr:`limit_hits`. The rule, see
        :class:`FloodControl`: a message is refused when, among the messages accepted
        less than 1.0 s - ``tolerance`` before it, there are already
        ``global_per_second`` (to any chat) or ``private_per_second`` to the same private
        chat (``chat_id > 0``), or, among those accepted less than 60.0 s - ``tolerance``
        before it, ``group_per_minute`` to the same group (``chat_id < 0``). With the
        default ``tolerance`` (20 ms) evenly spaced sending at exactly the limits passes;
        with ``tolerance=0`` the windows are exact, as Telegram's, and a client must keep
        below the limits by however much its messages' arrival times jitter.

        Messages are what ``sendMessage``, ``sendPhoto`` and ``sendDocument`` deliver and,
        with ``limit_edits`` (the default; Telegram counts edits too), the edits of
        ``editMessageText`` / ``editMessageReplyMarkup``. Messages (and edits) accepted
        before this call count too. Calling it again changes the limits. Other ``send*``
        methods (``sendChatAction``, ...) are neither limited nor counted.
        """
        if retry_after < 1:
            raise ValueError("retry_after must be at least 1")
        flood = FloodControl(
            global_per_second=global_per_second,
            private_per_second=private_per_second,
            group_per_minute=group_per_minute,
            tolerance=tolerance,
        )
        horizon = time.monotonic() - GROUP_WINDOW
        earlier = [(m.at, m.chat_id) for m in self.sent]
        if limit_edits:
            earlier += [(e.at, e.chat_id) for e in self.edits]
        for at, chat_id in sorted(earlier):
            if at > horizon:
                flood.record(chat_id, at)
        self._flood = flood
        self._flood_retry_after = retry_after
        self._limit_edits = limit_edits

    # --------------------------------------------------------------- inspection

    @property
    def flood_control(self) -> FloodControl | None:
        """The limits :meth:`enforce_limits` set (None while unlimited)."""
        return self._flood

    def sent_to(self, chat_id: int) -> list[SentMessage]:
        """Accepted messages to ``chat_id``, in order."""
        return [m for m in self.sent if m.chat_id == chat_id]

    def current(self, chat_id: int, message_id: int) -> SentMessage | None:
        """The bot's message as it is now: its latest text and reply_markup after edits.

        A copy of the :class:`SentMessage` with ``text``, ``visible_text``,
        ``parse_mode`` and ``reply_markup`` replaced by the latest edit's (the objects in
        :attr:`sent` keep what was sent). None if the bot sent no such message or it was
        deleted.
        """
        return self._current.get((chat_id, message_id))

    def commands(
        self, scope: str | dict[str, Any] = "default", language_code: str = ""
    ) -> list[dict[str, str]]:
        """The command list ``setMyCommands`` stored for ``scope`` and ``language_code``.

        ``scope`` is a BotCommandScope dict (``{"type": "chat", "chat_id": 5}``) or just
        its type ("default", "all_private_chats", "all_group_chats",
        "all_chat_administrators"); "" is the language-independent list. Each command
        is ``{"command": ..., "description": ...}``; ``[]`` when nothing is stored, as
        ``getMyCommands`` answers.
        """
        key = _scope_key(scope if isinstance(scope, dict) else {"type": scope})
        return [dict(c) for c in self._commands.get((key, language_code), [])]

    def chat(self, chat_id: int) -> dict[str, Any]:
        """The Chat dict the fake uses for ``chat_id`` (as registered, or a default one)."""
        return dict(self._chat(chat_id))

    async def say(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        chat_type: str = "private",
        first_name: str = "Tester",
        username: str | None = None,
        language_code: str | None = "en",
        forward_origin: dict[str, Any] | None = None,
        sender_chat: dict[str, Any] | None = None,
        reply_to_message_id: int | None = None,
    ) -> str:
        """A person writes `text` in a chat; returns the bot's next reply there (HTML source).

        The options are :meth:`push_message`'s. A photo or document reply counts too
        (its caption is returned).
        """
        before = len(self.sent_to(chat_id))
        self.push_message(
            chat_id,
            text,
            user_id=user_id,
            chat_type=chat_type,
            first_name=first_name,
            username=username,
            language_code=language_code,
            forward_origin=forward_origin,
            sender_chat=sender_chat,
            reply_to_message_id=reply_to_message_id,
        )
        replies = await self.wait_for_sent(before + 1, chat_id=chat_id, timeout=60)
        return replies[-1].text

    async def press(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        user_id: int | None = None,
        first_name: str = "Tester",
        language_code: str | None = "en",
        chat_type: str | None = None,
        check_button: bool = True,
        timeout: float = 60.0,  # noqa: ASYNC109 - a plain argument reads better in tests
    ) -> CallbackAnswer:
        """Press a button (see :meth:`push_callback`); return the bot's answer to it.

        Waits for the ``answerCallbackQuery`` of this press. Edits or messages the
        handler makes after answering may still be on their way: wait for them with
        :meth:`wait_for_edits` / :meth:`wait_for_sent`. On timeout raises AssertionError
        describing what the bot did meanwhile.
        """
        first_call, first_rejected = len(self.calls), len(self.rejected)
        update_id = self.push_callback(
            chat_id,
            message_id,
            data,
            user_id=user_id,
            first_name=first_name,
            language_code=language_code,
            chat_type=chat_type,
            check_button=check_button,
        )
        query_id = str(update_id)

        def answer() -> CallbackAnswer | None:
            return next((a for a in self.callback_answers if a.query_id == query_id), None)

        def explain() -> str:
            lines = [
                f"no answerCallbackQuery for the press of {data!r} on message {message_id} "
                f"in chat {chat_id} (query {query_id}) within {timeout}s"
            ]
            if self._served_update_id < update_id:
                lines.append("  the update was never fetched: is a dispatcher polling?")
            calls = [(m, p) for m, p in self.calls[first_call:] if m.lower() != "getupdates"]
            lines.append(f"calls since the press ({len(calls)}, getUpdates left out):")
            lines += [f"  {m} {_brief(p)}" for m, p in calls[-15:]] or ["  (none)"]
            rejected = self.rejected[first_rejected:]
            if rejected:
                lines.append(f"rejected calls ({len(rejected)}):")
                lines += [f"  {r.method}: {r.status} {r.description}" for r in rejected[-10:]]
            return "\n".join(lines)

        return await self._wait_until(self._answers_signal, answer, timeout, explain)

    async def wait_for_edits(
        self,
        count: int,
        *,
        timeout: float = 60.0,  # noqa: ASYNC109 - a plain argument reads better in tests
        chat_id: int | None = None,
        message_id: int | None = None,
    ) -> list[Edit]:
        """Wait until at least ``count`` edits (in ``chat_id`` / of ``message_id``) were
        accepted; return them. On timeout raises AssertionError listing all edits."""

        def matching() -> list[Edit]:
            return [
                e
                for e in self.edits
                if (chat_id is None or e.chat_id == chat_id)
                and (message_id is None or e.message_id == message_id)
            ]

        def ready() -> list[Edit] | None:
            found = matching()
            return found if len(found) >= count else None

        def explain() -> str:
            where = "" if chat_id is None else f" in chat {chat_id}"
            which = "" if message_id is None else f" of message {message_id}"
            lines = [
                f"expected at least {count} edit(s){where}{which} within {timeout}s, got "
                f"{len(matching())}; all accepted edits ({len(self.edits)}):"
            ]
            lines += [
                f"  chat {e.chat_id} message {e.message_id}: {e.method} {e.text!r}"
                for e in self.edits
            ] or ["  (none)"]
            edit_rejections = [r for r in self.rejected if r.method.lower().startswith("edit")]
            if edit_rejections:
                lines.append(f"rejected edits ({len(edit_rejections)}):")
                lines += [
                    f"  chat {r.params.get('chat_id')} message {r.params.get('message_id')}:"
                    f" {r.status} {r.description}"
                    for r in edit_rejections[-10:]
                ]
            return "\n".join(lines)

        return await self._wait_until(self._edits_signal, ready, timeout, explain)

    async def wait_for_sent(
        self,
        count: int,
        *,
        timeout: float = 60.0,  # noqa: ASYNC109 - a plain argument reads better in tests
        chat_id: int | None = None,
    ) -> list[SentMessage]:
        """Wait until at least ``count`` messages (to ``chat_id``, if given) were accepted.

        Returns those messages. On timeout raises AssertionError listing what was sent
        and what was rejected, which usually explains the failure on its own.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            matching = self.sent if chat_id is None else self.sent_to(chat_id)
            if len(matching) >= count:
                return list(matching)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(self._describe_shortfall(count, timeout, chat_id, matching))
            await self._sent_signal.wait(remaining)

    async def _wait_until(
        self,
        signal: _Signal,
        ready: Callable[[], _T | None],
        timeout: float,  # noqa: ASYNC109
        explain: Callable[[], str],
    ) -> _T:
        """Wait until ``ready()`` gives a value, re-checking whenever ``signal`` fires."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = ready()
            if value is not None:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(explain())
            await signal.wait(remaining)

    def _describe_shortfall(
        self, count: int, timeout: float, chat_id: int | None, matching: list[SentMessage]
    ) -> str:
        where = "" if chat_id is None else f" to chat {chat_id}"
        lines = [
            f"expected at least {count} sent message(s){where} within {timeout}s, "
            f"got {len(matching)}; all accepted messages ({len(self.sent)}):"
        ]
        lines += [
            f"  chat {m.chat_id}: {m.text!r}"
            + ("" if m.method.lower() == "sendmessage" else f" [{m.method} {m.filename}]")
            for m in self.sent
        ] or ["  (none)"]
        if self.rejected:
            lines.append(f"rejected calls ({len(self.rejected)}):")
            lines += [
                f"  {r.method} chat {r.params.get('chat_id')}: {r.status} {r.description}"
                f" text={r.params.get('text', r.params.get('caption'))!r}"
                for r in self.rejected[-10:]
            ]
        return "\n".join(lines)

    # ------------------------------------------------------------ HTTP handling

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        match = _PATH_RE.match(request.path)
        if match is None:
            return _error(404, "Not Found")
        method = match.group("method")
        name = method.lower()  # Telegram accepts "getme" as well as "getMe"
        if not name.startswith("send"):
            return await self._answer(request, method, name, match.group("token"))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            response = await self._answer(request, method, name, match.group("token"))
            if self._send_latency > 0:
                # Cut short by stop(), so that shutting down stays prompt.
                await self._sleep(self._send_latency)
            return response
        finally:
            self.in_flight -= 1

    async def _answer(
        self, request: web.Request, method: str, name: str, token: str
    ) -> web.StreamResponse:
        params, files = await _read_params(request)
        self.calls.append((method, params))

        if self.token is not None and token != self.token:
            return self._reject(method, params, 401, "Unauthorized")

        if name == "sendmessage" and self._delay > 0 and await self._sleep(self._delay):
            # The server stopped during the delay: the message never got through.
            return self._reject(method, params, 503, "Service Unavailable: server stopped")

        if self._unavailable is not None:
            status = self._unavailable
            self.rejected.append(RejectedCall(method, params, status, "(unavailable)"))
            reason = _reason(status)
            return web.Response(
                status=status,
                text=_PROXY_ERROR_BODY.format(status=status, reason=reason),
                content_type="text/html",
            )

        rule = self._take_fail_rule(name, params)
        if rule is not None:
            extra: dict[str, Any] = {}
            if rule.retry_after is not None:
                extra["parameters"] = {"retry_after": rule.retry_after}
            return self._reject(method, params, rule.status, rule.description, **extra)

        moved_to = self._migrated.get(_parse_int(params.get("chat_id")) or 0)
        if moved_to is not None and name.startswith("send"):
            return self._reject(
                method,
                params,
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                parameters={"migrate_to_chat_id": moved_to},
            )

        if name == "getme":
            return _ok(self._bot_user(full=True))
        if name == "getupdates":
            return await self._get_updates(params)
        implementation = self._methods.get(name)
        if implementation is None:
            return _ok(True)
        # Implementations do not await, so each call is decided atomically however many
        # requests are in flight (the flood limits rely on that).
        try:
            return _ok(implementation(method, params, files))
        except _ApiError as exc:
            details: dict[str, Any] = {}
            if exc.retry_after is not None:
                details["parameters"] = {"retry_after": exc.retry_after}
            return self._reject(method, params, exc.status, exc.description, **details)

    def _reject(
        self, method: str, params: dict[str, str], status: int, description: str, **extra: Any
    ) -> web.Response:
        self.rejected.append(RejectedCall(method, params, status, description))
        return _error(status, description, **extra)

    def _take_fail_rule(self, name: str, params: dict[str, str]) -> _FailRule | None:
        chat_id = _parse_int(params.get("chat_id"))
        for rule in self._fail_rules:
            if rule.method != name:
                continue
            if rule.chat_id is not None and rule.chat_id != chat_id:
                continue
            rule.remaining -= 1
            if rule.remaining <= 0:
                self._fail_rules.remove(rule)
            return rule
        return None

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, but wake early when the server stops (so stop() stays prompt).

        Returns True if the sleep was cut short by stop().
        """
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _get_updates(self, params: dict[str, str]) -> web.Response:
        offset = _parse_int(params.get("offset")) or 0
        limit = min(max(_parse_int(params.get("limit")) or 100, 1), 100)
        timeout = max(_parse_float(params.get("timeout")) or 0.0, 0.0)

        # An offset confirms every update below it, and they are gone for good, as in
        # Telegram. A negative offset asks for the last -offset updates (also as Telegram).
        if offset > 0:
            self._updates = [u for u in self._updates if int(u["update_id"]) >= offset]

        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(timeout, MAX_LONG_POLL_SECONDS)
        while True:
            pending = self._updates[offset:] if offset < 0 else self._updates
            if pending or self._closing.is_set():
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await self._updates_signal.wait(remaining)
        served = pending[:limit]
        if served:
            self._served_update_id = max(
                self._served_update_id, max(int(u["update_id"]) for u in served)
            )
        return _ok(served)

    # ---------------------------------------------------------- sending messages

    def _send_message(
        self, method: str, params: dict[str, str], files: dict[str, _Upload]
    ) -> dict[str, Any]:
        chat_id = self._target_chat(params)
        self._check_writable(chat_id)
        text = params.get("text", "")
        parse_mode = params.get("parse_mode") or None
        visible, entities = _format(text, parse_mode)
        if not visible.strip():
            raise _bad_request("message text is empty")
        if utf16_len(visible) > MAX_MESSAGE_LENGTH:
            raise _bad_request("message is too long")
        markup = _parse_markup(params.get("reply_markup"))
        content: dict[str, Any] = {"text": visible}
        if entities:
            content["entities"] = entities
        record = SentMessage(
            method=method,
            chat_id=chat_id,
            text=text,
            parse_mode=parse_mode,
            params=params,
            at=0.0,
            visible_text=visible,
            reply_markup=markup,
        )
        return self._deliver(record, content)

    def _send_photo(
        self, method: str, params: dict[str, str], files: dict[str, _Upload]
    ) -> dict[str, Any]:
        return self._send_media(method, params, files, "photo")

    def _send_document(
        self, method: str, params: dict[str, str], files: dict[str, _Upload]
    ) -> dict[str, Any]:
        return self._send_media(method, params, files, "document")

    def _send_media(
        self, method: str, params: dict[str, str], files: dict[str, _Upload], kind: str
    ) -> dict[str, Any]:
        chat_id = self._target_chat(params)
        self._check_writable(chat_id)
        upload, media = self._take_media(kind, params.get(kind), files)
        caption = params.get("caption", "")
        parse_mode = params.get("parse_mode") or None
        visible, entities = _format(caption, parse_mode)
        if utf16_len(visible) > MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        markup = _parse_markup(params.get("reply_markup"))
        content: dict[str, Any] = {kind: media}
        if visible:
            content["caption"] = visible
        if entities:
            content["caption_entities"] = entities
        record = SentMessage(
            method=method,
            chat_id=chat_id,
            text=caption,
            parse_mode=parse_mode,
            params=params,
            at=0.0,
            visible_text=visible,
            reply_markup=markup,
            file=None if upload is None else upload.data,
            filename=None if upload is None else upload.filename,
        )
        return self._deliver(record, content)

    def _deliver(self, record: SentMessage, content: dict[str, Any]) -> dict[str, Any]:
        """Apply the flood limits, then record the message; return it as Telegram would."""
        now = time.monotonic()
        self._admit(record.chat_id, now)
        record.at = now
        record.message_id = self._take_message_id()
        chat = self._chat(record.chat_id)
        message: dict[str, Any] = {"message_id": record.message_id}
        if chat["type"] == "channel":
            message["sender_chat"] = dict(chat)  # posts in a channel are the channel's
        else:
            message["from"] = self._bot_user(full=False)
        message |= {"chat": chat, "date": int(time.time()), **content}
        keyboard = _inline_keyboard(record.reply_markup)
        if keyboard is not None:
            message["reply_markup"] = keyboard
        key = (record.chat_id, record.message_id)
        self._messages[key] = message
        self._current[key] = record
        self.sent.append(record)
        self._sent_signal.notify()
        return message

    def _take_media(
        self, kind: str, value: str | None, files: dict[str, _Upload]
    ) -> tuple[_Upload | None, Any]:
        """The upload (None for a file_id or URL) and the ``photo``/``document`` JSON."""
        upload: _Upload | None = None
        if value is None or value == "":
            raise _bad_request(f"there is no {kind} in the request")
        if kind in files:  # the file itself sent as the field
            upload = files[kind]
        elif value.startswith("attach://"):
            upload = files.get(value.removeprefix("attach://"))
            if upload is None:
                raise _bad_request(f"there is no {kind} in the request")
        elif value in self._files:
            return None, self._files[value]
        elif value.startswith(("http://", "https://")):
            upload = None
        else:
            raise _bad_request("wrong file identifier/HTTP URL specified")

        data = b"" if upload is None else upload.data
        if upload is not None and not data:
            raise _bad_request("file must be non-empty")
        if kind == "photo" and upload is not None and not _is_image(data):
            raise _bad_request("IMAGE_PROCESS_FAILED")
        number = self._next_file_number
        self._next_file_number += 1
        file_id = f"{'AgAC' if kind == 'photo' else 'BQAC'}fake{number:06d}"
        ids: dict[str, Any] = {"file_id": file_id, "file_unique_id": f"AQADfake{number:06d}"}
        if upload is not None:
            ids["file_size"] = len(data)
        if kind == "photo":
            width, height = _image_size(data)
            media: Any = [ids | {"width": width, "height": height}]
        else:
            media = dict(ids)
            name = upload.filename if upload is not None else value.rsplit("/", 1)[-1]
            if name:
                media["file_name"] = name
            media["mime_type"] = mimetypes.guess_type(name)[0] or "application/octet-stream"
        self._files[file_id] = media
        return upload, media

    def _admit(self, chat_id: int, now: float) -> None:
        """Raise the 429 of :meth:`enforce_limits` if a message now breaks the limits."""
        if self._flood is not None and not self._flood.admit(chat_id, now):
            self.limit_hits += 1
            seconds = self._flood_retry_after
            raise _ApiError(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)

    def _target_chat(self, params: dict[str, str]) -> int:
        """The chat a call is about: a numeric chat_id or a registered "@username"."""
        raw = params.get("chat_id", "")
        if not raw:
            raise _bad_request("chat_id is empty")
        chat_id = _parse_int(raw)
        if chat_id is not None:
            return chat_id
        if raw.startswith("@"):
            name = raw[1:].lower()
            for known_id, chat in self._chats.items():
                if str(chat.get("username", "")).lower() == name:
                    return known_id
        raise _bad_request("chat not found")

    def _check_writable(self, chat_id: int) -> None:
        """Raise the error Telegram gives for writing where the bot may not."""
        if chat_id in self._blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        chat_type = self._chat(chat_id)["type"]
        status = self._members.get((chat_id, self.bot_id), {}).get("status")
        if chat_type in ("group", "supergroup"):
            if status == "kicked":
                raise _ApiError(403, f"Forbidden: bot was kicked from the {chat_type} chat")
            if status == "left":
                raise _ApiError(403, f"Forbidden: bot is not a member of the {chat_type} chat")
        elif chat_type == "channel":
            if status in (None, "left", "kicked"):
                raise _ApiError(403, "Forbidden: bot is not a member of the channel chat")
            if status not in ("creator", "administrator"):
                raise _bad_request("need administrator rights in the channel chat")

    # -------------------------------------------------------- editing messages

    def _edit_message_text(
        self, method: str, params: dict[str, str], files: dict[str, _Upload]
    ) -> dict[str, Any]:
        return self._edit(method, params, text_edit=True)

    def _edit_message_reply_markup(
        self, method: str, params: dict[str, str], files: dict[str, _Upload]
    ) -> dict[str, Any]:
        return self._edit(method, params, text_edit=False)

    def _edit(self, method: str, params: dict[str, str], *, text_edit: bool) -> dict[str, Any]:
        if params.get("inline_message_id") and not params.get("chat_id"):
            raise _bad_request("message to edit not found")  # no inline messages here
        chat_id = self._target_chat(params)
        message_id = _parse_int(params.get("message_id"))
        if message_id is None:
            raise _bad_request("message identifier is not specified")
        self._check_writable(chat_id)
        key = (chat_id, message_id)
        stored = self._messages.get(key)
        if stored is None:
            raise _bad_request("message to edit not found")
        if key not in self._current:
            raise _bad_request("message can't be edited")  # someone else's message
        text: str | None = None
        parse_mode: str | None = None
        visible: str | None = None
        entities: list[dict[str, Any]] = []
        if text_edit:
            if "text" not in stored:
                raise _bad_request("there is no text in the message to edit")
            text = params.get("text", "")
            parse_mode = params.get("parse_mode") or None
            visible, entities = _format(text, parse_mode)
            if not visible.strip():
                raise _bad_request("message text is empty")
            if utf16_len(visible) > MAX_MESSAGE_LENGTH:
                raise _bad_request("message is too long")
        markup = _parse_markup(params.get("reply_markup"))
        # Without reply_markup an edit removes the inline keyboard, as in Telegram.
        keyboard = _inline_keyboard(markup)
        same_text = not text_edit or (
            visible == stored.get("text") and entities == stored.get("entities", [])
        )
        if same_text and keyboard == stored.get("reply_markup"):
            raise _ApiError(400, NOT_MODIFIED)
        now = time.monotonic()
        if self._limit_edits:
            self._admit(chat_id, now)

        updated = dict(stored)
        updated["edit_date"] = int(time.time())
        changes: dict[str, Any] = {"reply_markup": keyboard}
        if text_edit:
            updated["text"] = visible
            updated.pop("entities", None)
            if entities:
                updated["entities"] = entities
            changes |= {"text": text, "visible_text": visible, "parse_mode": parse_mode}
        updated.pop("reply_markup", None)
        if keyboard is not None:
            updated["reply_markup"] = keyboard
        self._messages[key] = updated
        self._current[key] = dataclasses.replace(self._current[key], **changes)
        self.edits.append(
            Edit(
                method=method,
                chat_id=chat_id,
                message_id=message_id,
                text=text,
                parse_mode=parse_mode,
                reply_markup=keyboard,
                params=params,
                at=now,
                visible_text=visible,
            )
        )
        self._edits_signal.notify()
        return updated

    def _delete_message(
        self, method: str, params: dict[str, str], files: dict[str, _Upload]
    ) -> bool:
        # Always "ok", even for an unknown message (unlike Telegram), so that clean-up
        # code does not have to care what the fake knows about.
        chat_id = self._target_chat(params)
        message_id = _parse_int(params.get("message_id"))
        if message_id is not None:
            self.deleted.append((chat_id, message_id))
            self._messages.pop((chat_id, message_id), None)
            self._current.pop((chat_id, message_id), None)
        return True

    def _answer_callback_query(
        self, method: str, params: dict[str, str], files: dict[str, _Upload]
    ) -> bool:
        query_id = params.get("callback_query_id", "")
        too_old = "query is too old and response timeout expired or query ID is invalid"
        if not query_id:
            raise _bad_request(too_old)
        if query_id in self.callback_queries:
            # A query pushed by push_callback can be answered once, as in Telegram.
            # (Hand-made queries from push_update are not tracked and always accepted.)
            if query_id in self._answered:
                raise _bad_request(too_old)
            self._answered.add(query_id)
        self.callback_answers.append(
            CallbackAnswer(
                query_id=query_id,
                text=params.get("text") or None,
                show_alert=params.get("show_alert", "").lower() in ("true", "1"),
                url=params.get("url") or None,
                cache_time=_parse_int(params.get("cache_time")),
                params=params,
                at=time.monotonic(),
            )
        )
        self._answers_signal.notify()
        return True

    # ----------------------------------------------------------- chats, members

    def _get_chat(
        self, method: str, params: dict[str, str], files: dict[str, _Upload]
    ) -> dict[str, Any]:
        chat_id = self._target_chat(params)
        if chat_id not in self._chats and not any(m.chat_id == chat_id for m in self.sent):
            raise _bad_request("chat not found")
        return self._chat(chat_id) | {
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _get_chat_member(
        self, method: str, params: dict[str, str], files: dict[str, _Upload]
    ) -> dict[str, Any]:
        chat_id = self._target_chat(params)
        user_id = _parse_int(params.get("user_id"))
        if user_id is None:
            raise _bad_request("invalid user_id specified")
        chat = self._chat(chat_id)
        if user_id != self.bot_id:
            self._check_member_list(chat)
        return self._member_json(chat, user_id, self._member_entry(chat, user_id))

    def _get_chat_administrators(
        self, method: str, params: dict[str, str], files: dict[str, _Upload]
    ) -> list[dict[str, Any]]:
        chat_id = self._target_chat(params)
        chat = self._chat(chat_id)
        if chat["type"] == "private":
            raise _bad_request("there are no administrators in the private chat")
        self._check_member_list(chat)
        admins = [
            (user_id, entry)
            for (member_chat, user_id), entry in self._members.items()
            if member_chat == chat_id and entry["status"] in ("creator", "administrator")
        ]
        admins.sort(key=lambda pair: pair[1]["status"] != "creator")  # the owner first
        return [self._member_json(chat, user_id, entry) for user_id, entry in admins]

    def _check_member_list(self, chat: dict[str, Any]) -> None:
        """Only a channel's administrators may look at its members."""
        if chat["type"] != "channel":
            return
        status = self._members.get((chat["id"], self.bot_id), {}).get("status")
        if status not in ("creator", "administrator"):
            raise _bad_request("member list is inaccessible")

    def _member_entry(self, chat: dict[str, Any], user_id: int) -> dict[str, Any]:
        """What :meth:`set_member` said about ``user_id`` in ``chat``, or the default."""
        entry = self._members.get((chat["id"], user_id))
        if entry is not None:
            return entry
        if chat["type"] == "private":
            # The person and the bot are the two members of a private chat.
            return {"status": "member" if user_id in (chat["id"], self.bot_id) else "left"}
        if chat["type"] == "channel" and user_id == self.bot_id:
            return {"status": "left"}
        return {"status": "member"}

    def _member_json(
        self, chat: dict[str, Any], user_id: int, entry: dict[str, Any]
    ) -> dict[str, Any]:
        """A ChatMember object with every field aiogram requires for its status."""
        status = entry["status"]
        member: dict[str, Any] = {"status": status, "user": self._user_json(user_id)}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member |= {
                "can_be_edited": False,
                "is_anonymous": False,
                "can_manage_chat": True,
                "can_delete_messages": True,
                "can_manage_video_chats": True,
                "can_restrict_members": True,
                "can_promote_members": False,
                "can_change_info": True,
                "can_invite_users": True,
                "can_post_stories": True,
                "can_edit_stories": True,
                "can_delete_stories": True,
                "can_send_welcome_messages": False,
            }
            if chat["type"] == "channel":
                member |= {"can_post_messages": True, "can_edit_messages": True}
            else:
                member["can_pin_messages"] = True
            if chat["type"] == "supergroup":
                member["can_manage_topics"] = False
        elif status == "restricted":
            member["is_member"] = True
            for right in (
                "can_send_messages",
                "can_send_audios",
                "can_send_documents",
                "can_send_photos",
                "can_send_videos",
                "can_send_video_notes",
                "can_send_voice_notes",
                "can_send_polls",
                "can_send_other_messages",
                "can_add_web_page_previews",
                "can_react_to_messages",
                "can_edit_tag",
                "can_change_info",
                "can_invite_users",
                "can_pin_messages",
                "can_manage_topics",
            ):
                member[right] = False
            member["until_date"] = 0  # forever
        elif status == "kicked":
            member["until_date"] = 0
        member |= {k: v for k, v in entry.items() if k != "status"}
        return member

    # ------------------------------------------------------ commands, menu button

    def _set_my_commands(
        self, method: str, params: dict[str, str], files: dict[str, _Upload]
    ) -> bool:
        commands = _parse_json(params.get("commands") or "[]", "commands")
        if not isinstance(commands, list):
            raise _bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad_request("BOT_COMMANDS_TOO_MUCH")
        stored: list[dict[str, str]] = []
        for command in commands:
            name = command.get("command") if isinstance(command, dict) else None
            description = command.get("description") if isinstance(command, dict) else None
            if not isinstance(name, str) or not _COMMAND_NAME_RE.fullmatch(name):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            stored.append({"command": name, "description": description})
        key = self._commands_key(params)
        if stored:
            self._commands[key] = stored
        else:
            self._commands.pop(key, None)  # an empty list deletes, as in Telegram
        return True

    def _get_my_commands(
        self, method: str, params: dict[str, str], files: dict[str, _Upload]
    ) -> list[dict[str, str]]:
        return [dict(c) for c in self._commands.get(self._commands_key(params), [])]

    def _delete_my_commands(
        self, method: str, params: dict[str, str], files: dict[str, _Upload]
    ) -> bool:
        self._commands.pop(self._commands_key(params), None)
        return True

    def _commands_key(self, params: dict[str, str]) -> tuple[str, str]:
        language = params.get("language_code", "")
        if language and not _LANGUAGE_CODE_RE.fullmatch(language):
            raise _bad_request("invalid language code specified")
        scope = _parse_json(params.get("scope") or '{"type": "default"}', "scope")
        if not isinstance(scope, dict):
            raise _bad_request("can't parse scope JSON object")
        return _scope_key(scope), language

    def _set_chat_menu_button(
        self, method: str, params: dict[str, str], files: dict[str, _Upload]
    ) -> bool:
        chat_id = self._target_chat(params) if params.get("chat_id") else None
        button = _parse_json(params.get("menu_button") or '{"type": "default"}', "menu_button")
        if not isinstance(button, dict):
            raise _bad_request("can't parse menu button JSON object")
        self.menu_buttons[chat_id] = button
        return True

    def _get_chat_menu_button(
        self, method: str, params: dict[str, str], files: dict[str, _Upload]
    ) -> dict[str, Any]:
        chat_id = self._target_chat(params) if params.get("chat_id") else None
        button = self.menu_buttons.get(chat_id) or self.menu_buttons.get(None)
        return dict(button) if button else {"type": "default"}

    # ------------------------------------------------------------------ helpers

    def _take_message_id(self) -> int:
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id

    def _bot_user(self, *, full: bool) -> dict[str, Any]:
        user: dict[str, Any] = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Dozor",
            "username": self.bot_username,
        }
        if full:
            # getMe includes the bot's capabilities; a message's "from" does not.
            user |= {
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        return user

    def _person(
        self, user_id: int, first_name: str, username: str | None, language_code: str | None
    ) -> dict[str, Any]:
        """A (human) User dict, remembered for getChatMember answers."""
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code is not None:
            user["language_code"] = language_code
        if username is not None:
            user["username"] = username
        self._users[user_id] = user
        return dict(user)

    def _user_json(self, user_id: int) -> dict[str, Any]:
        if user_id == self.bot_id:
            return self._bot_user(full=False)
        known = self._users.get(user_id)
        if known is not None:
            return dict(known)
        return {"id": user_id, "is_bot": False, "first_name": "Tester"}

    def _chat(self, chat_id: int) -> dict[str, Any]:
        known = self._chats.get(chat_id)
        if known is not None:
            return dict(known)
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Tester"}
        return {"id": chat_id, "type": "supergroup", "title": f"Test supergroup {chat_id}"}


def _check_status(status: str) -> None:
    if status not in MEMBER_STATUSES:
        raise ValueError(
            f"unknown chat member status {status!r}; use one of {sorted(MEMBER_STATUSES)}"
        )


def _service_user(sender_chat: dict[str, Any], chat_id: int) -> dict[str, Any]:
    """The ``from`` Telegram sets on a message sent on behalf of ``sender_chat``."""
    if sender_chat.get("id") == chat_id:
        return {
            "id": GROUP_ANONYMOUS_BOT_ID,
            "is_bot": True,
            "first_name": "Group",
            "username": "GroupAnonymousBot",
        }
    return {
        "id": CHANNEL_BOT_ID,
        "is_bot": True,
        "first_name": "Channel",
        "username": "Channel_Bot",
    }


def _all_buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard") or [] for b in row]


def _format(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    """The visible text and entities of ``text`` sent with ``parse_mode``."""
    if parse_mode is None:
        return text, []
    mode = parse_mode.lower()
    if mode == "html":
        try:
            return parse_html_entities(text)
        except HTMLParseError as exc:
            raise _bad_request(f"can't parse entities: {exc}") from None
    if mode in ("markdown", "markdownv2"):
        # Accepted without validation: the bot is expected to use HTML.
        return text, []
    raise _bad_request("unsupported parse_mode")


def _parse_json(raw: str, what: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise _bad_request(f"can't parse {what} JSON object") from None


def _parse_markup(raw: str | None) -> dict[str, Any] | None:
    """The reply_markup of a call, parsed and checked the way Telegram checks it."""
    if not raw:
        return None
    try:
        markup = json.loads(raw)
    except ValueError:
        markup = None
    if not isinstance(markup, dict):
        raise _bad_request("can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return markup  # a reply keyboard, ReplyKeyboardRemove or ForceReply
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad_request(
            'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
        )
    for button in (b for row in rows for b in row):
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise _bad_request(
                'can\'t parse inline keyboard button: Field "text" must be of type String'
            )
        if not any(action in button for action in _BUTTON_ACTIONS):
            raise _bad_request(
                "can't parse inline keyboard button: Text buttons are unallowed in the "
                "inline keyboard"
            )
        if "callback_data" in button:
            data = button["callback_data"]
            if not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
                raise _bad_request("BUTTON_DATA_INVALID")
        if "url" in button and not str(button["url"]).startswith(("http://", "https://", "tg://")):
            raise _bad_request("BUTTON_URL_INVALID")
    return markup


def _inline_keyboard(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """The inline keyboard a message shows for ``markup`` (None: none, or no buttons)."""
    if not markup:
        return None
    rows = markup.get("inline_keyboard")
    if not rows or not any(rows):
        return None
    return {"inline_keyboard": [list(row) for row in rows if row]}


def _scope_key(scope: dict[str, Any]) -> str:
    """A BotCommandScope as a string: "default", "chat:5", "chat_member:5:7", ..."""
    kind = str(scope.get("type", "default"))
    if kind in ("chat", "chat_administrators"):
        return f"{kind}:{scope.get('chat_id')}"
    if kind == "chat_member":
        return f"{kind}:{scope.get('chat_id')}:{scope.get('user_id')}"
    return kind


def _is_image(data: bytes) -> bool:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return True
    return data.startswith(_IMAGE_SIGNATURES)


def _image_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG or GIF header; 320 x 320 for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    return 320, 320


def _brief(params: dict[str, str]) -> str:
    """A call's parameters on one line, long values cut short."""
    parts = [f"{k}={v[:60] + '...' if len(v) > 60 else v!r}" for k, v in params.items()]
    return " ".join(parts)


async def _read_params(request: web.Request) -> tuple[dict[str, str], dict[str, _Upload]]:
    """All parameters of a call as strings, whichever way the client sent them, and the
    files uploaded with it, by field name.

    aiogram sends form data (nested values as JSON strings; multipart when it uploads a
    file, which a parameter then names as "attach://<field>"); the Bot API also accepts
    a query string or a JSON body, so those are normalised to the same shape. An
    uploaded file's parameter reads ``"<file NAME>"``.
    """
    params: dict[str, str] = dict(request.query)
    files: dict[str, _Upload] = {}
    if request.method != "POST":
        return params, files
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            for key, value in body.items():
                params[key] = value if isinstance(value, str) else json.dumps(value)
        return params, files
    # aiohttp refuses bodies over 1 MiB by default; Telegram takes uploads up to 50 MB.
    form = await request.clone(client_max_size=MAX_UPLOAD_BYTES).post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            params[key] = f"<file {value.filename}>"
            files[key] = _Upload(value.filename, value.file.read())
        elif isinstance(value, str):
            params[key] = value
        else:
            params[key] = bytes(value).decode("utf-8", errors="replace")
    return params, files


def _parse_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _parse_float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, **extra: Any) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    body.update(extra)
    return web.json_response(body, status=status)
