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
* Only ``getMe``, ``getUpdates`` and ``sendMessage`` are really implemented; every
  other method answers ``{"ok": true, "result": true}``.
* Long polling waits at most two seconds, whatever ``timeout`` the client asks for,
  to keep tests fast; ``allowed_updates`` is recorded but not applied.

Everything runs on the event loop of the test that started the server; the
synchronous helpers (``push_update``, ``fail_next``, ...) must be called from that
loop's thread (which is what a plain ``async def`` test does).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web

from tests.loopback import LoopbackServer

__all__ = [
    "FakeBotAPI",
    "FloodControl",
    "HTMLParseError",
    "RejectedCall",
    "SentMessage",
    "parse_html",
    "utf16_len",
]

# Telegram's limit for the text of one message, in UTF-16 code units after entity
# parsing (so "<b>" tags do not count, and an emoji outside the BMP counts twice).
MAX_MESSAGE_LENGTH = 4096

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


@dataclass
class SentMessage:
    """One ``sendMessage`` call that the fake accepted (answered with HTTP 200)."""

    method: str
    chat_id: int
    text: str  # the raw text as sent (the HTML source when parse_mode is HTML)
    parse_mode: str | None
    params: dict[str, str]  # every form field as received
    at: float  # time.monotonic() when accepted
    # Extras beyond what a caller must supply; defaulted so the class stays easy to build.
    visible_text: str = ""  # the text with tags removed and entities decoded
    message_id: int = 0  # the message_id the fake answered with

    @property
    def accepted_at(self) -> float:
        """Same as :attr:`at`: the ``time.monotonic()`` at which the fake accepted it."""
        return self.at


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
        self._by_chat: dict[int, deque[float]] = {}

    def admit(self, chat_id: int, now: float) -> bool:
        """Record a message to ``chat_id`` at ``now`` and return True if within limits.

        Returns False, recording nothing, if the message breaks a limit.
        """
        if self._in_window(self._all, now, GLOBAL_WINDOW) >= self.global_per_second:
            return False
        chat = self._by_chat.get(chat_id)
        if chat is not None:
            if chat_id > 0:
                if self._in_window(chat, now, PRIVATE_WINDOW) >= self.private_per_second:
                    return False
            elif chat_id < 0 and self._in_window(chat, now, GROUP_WINDOW) >= self.group_per_minute:
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
    out: list[str] = []
    stack: list[str] = []  # open tags, innermost last
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c == "&":
            char, i = _decode_entity(text, i)
            out.append("&" if char is None else char)
            continue
        if c == ">":
            # Telegram itself shows a stray ">" literally, but its documentation asks
            # for "&gt;"; rejecting it catches text that was never escaped.
            raise HTMLParseError(f'Unescaped ">" at byte offset {_byte_offset(text, i)}')
        if c != "<":
            out.append(c)
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

    if stack:
        raise HTMLParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


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

    It records every call in :attr:`calls` and every accepted ``sendMessage`` in
    :attr:`sent`, serves updates queued with :meth:`push_update` / :meth:`push_message`
    through ``getUpdates`` long polling, and can be told to misbehave the way the real
    API does (rate limits, blocked users, a dead proxy, slow answers). Every error it
    answered is also kept in :attr:`rejected`, with the description it sent.

    Error precedence for ``sendMessage`` is: :meth:`set_unavailable`, then
    :meth:`fail_next` rules, then :meth:`block_chat`, then text validation, then the
    flood limits of :meth:`enforce_limits`.

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

        self._updates: list[dict[str, Any]] = []  # pushed and not yet confirmed
        # Telegram update ids are large and increase; start somewhere non-trivial so a
        # client that wrongly sends offset=0 or offset=1 is not accidentally right.
        self._next_update_id = 100_000
        self._next_message_id = 1
        # Chats seen in push_message, so sendMessage answers describe them consistently.
        self._chats: dict[int, dict[str, Any]] = {}
        self._fail_rules: list[_FailRule] = []
        self._blocked: set[int] = set()
        self._unavailable: int | None = None
        self._delay = 0.0
        self._send_latency = 0.0
        self._flood: FloodControl | None = None
        self._flood_retry_after = 1
        self.limit_hits = 0
        self.in_flight = 0
        self.most_in_flight = 0

        self._updates_signal = _Signal()
        self._sent_signal = _Signal()

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
    ) -> int:
        """Queue an Update carrying a text Message from a user; return its update_id.

        In a private chat the user id defaults to the chat id (as in Telegram); in a
        group it defaults to a fixed test user. A text starting with a command gets the
        ``bot_command`` entity Telegram would attach.
        """
        if user_id is None:
            user_id = chat_id if chat_type == "private" else 777_000_001
        user: dict[str, Any] = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": "en",
        }
        if username is not None:
            user["username"] = username
        if chat_type == "private":
            chat: dict[str, Any] = {"id": chat_id, "type": "private", "first_name": first_name}
            if username is not None:
                chat["username"] = username
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
        entities = _command_entities(text)
        if entities:
            message["entities"] = entities
        return self.push_update({"message": message})

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
        """Every later sendMessage to ``chat_id`` gets 403 "bot was blocked by the user"."""
        self._blocked.add(chat_id)

    def unblock_chat(self, chat_id: int) -> None:
        """The user unblocked the bot: sends to ``chat_id`` are accepted again."""
        self._blocked.discard(chat_id)

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
    ) -> None:
        """From now on, refuse ``sendMessage`` calls that break Telegram's flood limits.

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

        Messages accepted before this call (still in :attr:`sent`) count too. Calling it
        again changes the limits. Other ``send*`` methods are answered ``true`` without
        delivering anything, so they are neither limited nor counted.
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
        for message in self.sent:
            if message.at > horizon:
                flood.record(message.chat_id, message.at)
        self._flood = flood
        self._flood_retry_after = retry_after

    # --------------------------------------------------------------- inspection

    @property
    def flood_control(self) -> FloodControl | None:
        """The limits :meth:`enforce_limits` set (None while unlimited)."""
        return self._flood

    def sent_to(self, chat_id: int) -> list[SentMessage]:
        """Accepted messages to ``chat_id``, in order."""
        return [m for m in self.sent if m.chat_id == chat_id]

    async def say(
        self, chat_id: int, text: str, *, user_id: int | None = None, chat_type: str = "private"
    ) -> str:
        """A person writes `text` in a chat; returns the bot's next reply there (HTML source)."""
        before = len(self.sent_to(chat_id))
        self.push_message(chat_id, text, user_id=user_id, chat_type=chat_type)
        replies = await self.wait_for_sent(before + 1, chat_id=chat_id, timeout=60)
        return replies[-1].text

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

    def _describe_shortfall(
        self, count: int, timeout: float, chat_id: int | None, matching: list[SentMessage]
    ) -> str:
        where = "" if chat_id is None else f" to chat {chat_id}"
        lines = [
            f"expected at least {count} sent message(s){where} within {timeout}s, "
            f"got {len(matching)}; all accepted messages ({len(self.sent)}):"
        ]
        lines += [f"  chat {m.chat_id}: {m.text!r}" for m in self.sent] or ["  (none)"]
        if self.rejected:
            lines.append(f"rejected calls ({len(self.rejected)}):")
            lines += [
                f"  {r.method} chat {r.params.get('chat_id')}: {r.status} {r.description}"
                f" text={r.params.get('text')!r}"
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
        params = await _read_params(request)
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

        if name == "getme":
            return _ok(self._bot_user(full=True))
        if name == "getupdates":
            return await self._get_updates(params)
        if name == "sendmessage":
            return self._send_message(method, params)
        return _ok(True)

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
        return _ok(pending[:limit])

    def _send_message(self, method: str, params: dict[str, str]) -> web.Response:
        raw_chat_id = params.get("chat_id", "")
        if not raw_chat_id:
            return self._reject(method, params, 400, "Bad Request: chat_id is empty")
        chat_id = _parse_int(raw_chat_id)
        if chat_id is None:
            # "@channelusername" is valid for Telegram, but no such chat exists here.
            return self._reject(method, params, 400, "Bad Request: chat not found")
        if chat_id in self._blocked:
            return self._reject(method, params, 403, "Forbidden: bot was blocked by the user")

        text = params.get("text", "")
        parse_mode = params.get("parse_mode") or None
        visible = text
        if parse_mode is not None:
            mode = parse_mode.lower()
            if mode == "html":
                try:
                    visible = parse_html(text)
                except HTMLParseError as exc:
                    return self._reject(
                        method, params, 400, f"Bad Request: can't parse entities: {exc}"
                    )
            elif mode not in ("markdown", "markdownv2"):
                return self._reject(method, params, 400, "Bad Request: unsupported parse_mode")
            # Markdown is accepted without validation: the bot is expected to use HTML.
        if not visible.strip():
            return self._reject(method, params, 400, "Bad Request: message text is empty")
        if utf16_len(visible) > MAX_MESSAGE_LENGTH:
            return self._reject(method, params, 400, "Bad Request: message is too long")

        # Nothing below awaits, so checking the limits and recording the message is
        # atomic however many requests are in flight.
        now = time.monotonic()
        if self._flood is not None and not self._flood.admit(chat_id, now):
            self.limit_hits += 1
            seconds = self._flood_retry_after
            return self._reject(
                method,
                params,
                429,
                f"Too Many Requests: retry after {seconds}",
                parameters={"retry_after": seconds},
            )

        message_id = self._take_message_id()
        self.sent.append(
            SentMessage(
                method=method,
                chat_id=chat_id,
                text=text,
                parse_mode=parse_mode,
                params=params,
                at=now,
                visible_text=visible,
                message_id=message_id,
            )
        )
        self._sent_signal.notify()
        return _ok(
            {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": self._chat(chat_id),
                "from": self._bot_user(full=False),
                "text": visible,
            }
        )

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

    def _chat(self, chat_id: int) -> dict[str, Any]:
        known = self._chats.get(chat_id)
        if known is not None:
            return dict(known)
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Tester"}
        return {"id": chat_id, "type": "supergroup", "title": f"Test supergroup {chat_id}"}


async def _read_params(request: web.Request) -> dict[str, str]:
    """All parameters of a call as strings, whichever way the client sent them.

    aiogram sends form data (nested values as JSON strings); the Bot API also accepts
    a query string or a JSON body, so those are normalised to the same shape.
    """
    params: dict[str, str] = dict(request.query)
    if request.method != "POST":
        return params
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            for key, value in body.items():
                params[key] = value if isinstance(value, str) else json.dumps(value)
        return params
    form = await request.post()
    for key, value in form.items():
        # File uploads arrive as FileField; only their presence matters to this fake.
        if isinstance(value, web.FileField):
            params[key] = f"<file {value.filename}>"
        elif isinstance(value, str):
            params[key] = value
        else:
            params[key] = bytes(value).decode("utf-8", errors="replace")
    return params


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
