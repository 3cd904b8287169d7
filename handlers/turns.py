"""One piece of a kind of work per chat at a time (a search, an export): a chat that asks
again while its previous one runs is told so instead of doubling the work."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class ChatTurns:
    """Which chats have their work of this kind running now."""

    def __init__(self) -> None:
        self._running: set[int] = set()

    @contextlib.contextmanager
    def turn(self, chat_id: int) -> Iterator[bool]:
        """True while this chat's work may run; False if another of its runs already."""
        if chat_id in self._running:
            yield False
            return
        self._running.add(chat_id)
        try:
            yield True
        finally:
            self._running.discard(chat_id)
