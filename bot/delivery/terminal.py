"""A Sender that prints messages to a terminal as they would read in Telegram (for the demo)."""

from __future__ import annotations

import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import TextIO

from bot.delivery.sender import SendResult

BOLD, ITALIC, UNDERLINE, RESET = "\033[1m", "\033[3m", "\033[4m", "\033[0m"


class _ToTerminal(HTMLParser):
    """Telegram HTML to terminal text: bold and italic as ANSI styles, links as `text (url)`."""

    def __init__(self, styled: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.styled = styled
        self.out: list[str] = []
        self._href: list[str | None] = []

    def _style(self, code: str) -> None:
        if self.styled:
            self.out.append(code)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("b", "strong"):
            self._style(BOLD)
        elif tag in ("i", "em"):
            self._style(ITALIC)
        elif tag == "a":
            self._href.append(dict(attrs).get("href"))
            self._style(UNDERLINE)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("b", "strong", "i", "em", "a"):
            self._style(RESET)
        if tag == "a" and self._href:
            href = self._href.pop()
            if href:
                self.out.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        self.out.append(data)


def html_to_terminal(text: str, *, styled: bool) -> str:
    parser = _ToTerminal(styled)
    parser.feed(text)
    parser.close()
    return "".join(parser.out)


class TerminalSender:
    """Prints each message under a line naming its chat; always succeeds."""

    def __init__(self, names: dict[int, str], stream: TextIO | None = None) -> None:
        self._names = names
        self._stream = stream or sys.stdout
        self.sent: list[tuple[int, str]] = []
        self.photos: list[tuple[int, bytes, str]] = []

    async def send(self, chat_id: int, html: str, *, previews: bool = False) -> SendResult:
        styled = self._stream.isatty()
        name = self._names.get(chat_id, str(chat_id))
        rule = "─" * 72
        body = html_to_terminal(html, styled=styled)
        self._stream.write(f"\n{rule}\n✉  to {name} (chat {chat_id})\n{rule}\n{body}\n")
        self._stream.flush()
        self.sent.append((chat_id, html))
        return SendResult("sent")

    async def send_photo(self, chat_id: int, png: bytes, caption: str) -> SendResult:
        """Saves the picture in the temporary folder and prints where."""
        name = self._names.get(chat_id, str(chat_id))
        path = Path(tempfile.gettempdir()) / f"dozor-chart-{chat_id}.png"
        path.write_bytes(png)
        self._stream.write(f"\n🖼  to {name} (chat {chat_id}): {caption}\n   saved as {path}\n")
        self._stream.flush()
        self.photos.append((chat_id, png, caption))
        return SendResult("sent")
