"""Fitting HTML into Telegram messages: every reply and digest is cut here, by the length
Telegram counts (UTF-16 code units of the visible text), at block boundaries, never inside a
tag or an entity.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable

from bot.delivery.render import MAX_MESSAGE, html_length, shorten

SEPARATOR = "\n"
MAX_MESSAGES = 10  # one reply is never a flood: beyond this, the rest is summarised


def fit_block(block: str, limit: int = MAX_MESSAGE) -> str:
    """`block` if it fits one message; else its visible text, cut and escaped (formatting is
    lost, the text never is split inside a tag)."""
    if html_length(block) <= limit:
        return block
    plain = html.unescape(_strip_tags(block))
    return html.escape(shorten(plain, limit), quote=False)


def fit_messages(
    blocks: Iterable[str],
    *,
    limit: int = MAX_MESSAGE,
    separator: str = SEPARATOR,
    max_messages: int = MAX_MESSAGES,
    more: Callable[[int], str] | str = "… {count} more",
) -> list[str]:
    """Pack HTML blocks (each balanced on its own) into as few messages as fit `limit`.

    Blocks keep their order and are never split between messages; a block too long for any
    message is shortened, one with no visible text dropped. After `max_messages` messages the
    remaining blocks are dropped and `more` (plain text with `{count}`, or a function of the
    count; escaped here) ends the last message.
    """
    # A block with nothing visible would make an empty message, which Telegram refuses.
    items = [fit_block(block, limit) for block in blocks if html_length(block)]
    gap = html_length(separator)
    messages: list[list[str]] = []
    size = limit + 1  # no message open yet
    for index, block in enumerate(items):
        length = html_length(block)
        if size + gap + length > limit:
            if len(messages) == max_messages:
                left = len(items) - index
                note = more(left) if callable(more) else more.format(count=left)
                _end_with_note(messages[-1], note, limit, gap)
                break
            messages.append([])
            size = -gap
        messages[-1].append(block)
        size += gap + length
    return [separator.join(message) for message in messages]


def _end_with_note(message: list[str], note: str, limit: int, gap: int) -> None:
    """Append a plain note to a message, dropping its last blocks until the note fits."""
    escaped = html.escape(note, quote=False)
    dropped = 0
    while len(message) > 1 and (
        sum(html_length(block) + gap for block in message) + html_length(escaped) > limit
    ):
        message.pop()
        dropped += 1
    if dropped:  # the count in the note no longer covers what was just dropped: say so
        escaped = html.escape(f"{note} (+{dropped})", quote=False)
    room = limit - gap - html_length(escaped)
    if html_length(message[0]) > room:  # one block fills the message: make room for the note
        message[0] = fit_block(message[0], room)
    message.append(escaped)


def _strip_tags(text: str) -> str:
    out: list[str] = []
    inside = False
    for char in text:
        if char == "<":
            inside = True
        elif char == ">" and inside:
            inside = False
        elif not inside:
            out.append(char)
    return "".join(out)
