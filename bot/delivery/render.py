"""Alert rendering: Telegram HTML that is always escaped, balanced and within 4096 characters,
in the chat's language and time zone (the chrome's words come from `alerts.ftl`)."""

from __future__ import annotations

import bisect
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo

from bot.delivery.chats import moment_text
from bot.domain import Span, StoredPost
from bot.i18n import Texts

MAX_MESSAGE = 4096  # Telegram's limit, counted on the text after entities are parsed
MAX_QUERIES_SHOWN = 300
ELLIPSIS = "…"
MIN_EXCERPT = 80  # characters of the post an alert shows however tight the space
MIN_BATCHED_ALERT = 500  # a burst is cut into messages rather than alerts below this size
MAX_BATCH = 20  # alerts in one message at most
SEPARATOR = "\n\n— — —\n\n"
ALSO_NAMES = 3  # sources named in "also in …" before "+N"
_TAG = re.compile(r"<[^>]*>")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class AlertParts:
    """What one alert is made of (an outbox row's post, queries and spans)."""

    post: StoredPost
    queries: Sequence[str]
    spans: Sequence[Span]
    others: Sequence[StoredPost] = ()  # other posts telling the same story (folded into it)


def visible_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def shorten(text: str, limit: int) -> str:
    """Cut plain text to `limit` UTF-16 units on a word boundary, ending with an ellipsis."""
    if visible_length(text) <= limit:
        return text
    budget = limit - visible_length(ELLIPSIS)
    cut = text[:budget]
    while cut and visible_length(cut) > budget:
        cut = cut[:-1]
    boundary = max(cut.rfind(" "), cut.rfind("\n"))
    # Only back off to a word boundary when it does not throw away most of the text.
    if boundary > len(cut) * 0.6:
        cut = cut[:boundary]
    return cut.rstrip() + ELLIPSIS


def highlight(text: str, spans: Sequence[Span]) -> str:
    """Escape text and wrap each span in <b>; spans outside the text are ignored."""
    parts: list[str] = []
    position = 0
    for span in sorted(spans, key=lambda s: s.start):
        start, end = max(span.start, position), min(span.end, len(text))
        if start >= end:
            continue
        parts.append(html.escape(text[position:start], quote=False))
        parts.append(f"<b>{html.escape(text[start:end], quote=False)}</b>")
        position = end
    parts.append(html.escape(text[position:], quote=False))
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class FlatText:
    """A stretch [low, high) of a text with its whitespace folded into single spaces, and
    where each word landed (for excerpts: one post, many queries, one flattening)."""

    line: str
    low: int
    high: int
    starts: list[int]  # each word's start in the text
    ends: list[int]  # ... and end
    placed: list[int]  # ... and start in `line`

    def moved(self, offset: int) -> int:
        """Where the character of the text at `offset` lands in `line`."""
        index = bisect.bisect_right(self.starts, offset) - 1
        if index < 0:
            return 0
        return self.placed[index] + min(offset, self.ends[index]) - self.starts[index]


def flatten(text: str, low: int = 0, high: int | None = None) -> FlatText:
    """`text[low:high]` as one line (see FlatText)."""
    high = len(text) if high is None else high
    starts: list[int] = []
    ends: list[int] = []
    placed: list[int] = []
    size = 0
    for word in _WORD.finditer(text, low, high):
        starts.append(word.start())
        ends.append(word.end())
        placed.append(size)
        size += word.end() - word.start() + 1
    line = " ".join(text[a:b] for a, b in zip(starts, ends, strict=True))
    return FlatText(line, low, high, starts, ends, placed)


def excerpt(text: str, spans: Sequence[Span], limit: int, flat: FlatText | None = None) -> str:
    """One line of the post as HTML: whitespace folded, at most `limit` UTF-16 units of it
    around the first matched word (a third of the room before it), matches in bold, an
    ellipsis where it was cut. `flat`: the post already flattened (used when it covers the
    stretch to show)."""
    ordered = sorted((s for s in spans if s.end > s.start), key=lambda s: s.start)
    # Only the stretch of the post that can be shown is worked on (posts may be long).
    first = ordered[0].start if ordered else 0
    low = max(0, first - limit // 2)
    high = min(len(text), first + limit + limit // 4)
    if flat is None or not flat.low <= low or high > flat.high:
        if low:  # start at a word
            gap = re.search(r"\s", text[low:first])
            low = low + gap.end() if gap else first
        flat = flatten(text, low, high)
    line = flat.line
    shifted = [
        Span(flat.moved(s.start), flat.moved(min(s.end, flat.high)))
        for s in ordered
        if flat.low <= s.start < flat.high
    ]
    start = 0
    if shifted and visible_length(line[: shifted[-1].end]) > limit:
        start = max(0, shifted[0].start - limit // 3)
        space = line.find(" ", start)
        if start and 0 <= space < shifted[0].start:
            start = space + 1
    lead = ELLIPSIS if start or flat.low else ""
    rest = line[start:]
    shown = shorten(rest, limit - visible_length(lead))
    if shown == rest and text[flat.high :].strip():  # the stretch ended before the post
        shown = shorten(rest, limit - visible_length(lead) - 1)
        shown += "" if shown.endswith(ELLIPSIS) else ELLIPSIS
    cut = len(shown) - (len(ELLIPSIS) if shown != rest else 0)
    inside = [
        Span(s.start - start, min(s.end - start, cut))
        for s in shifted
        if s.start >= start and s.start - start < cut
    ]
    return html.escape(lead, quote=False) + highlight(shown, inside)


def safe_link(url: str | None) -> str | None:
    """Only http(s) links become clickable; anything else is dropped."""
    if url and url.startswith(("https://", "http://")) and len(url) <= 2048:
        return html.escape(url, quote=True)
    return None


def source_name(post: StoredPost) -> str:
    """The source's human name (a channel's title, a feed's title, an X display name) when
    it gave one, else the channel itself; plain text, not escaped."""
    return post.post.channel_title or post.post.channel


def also_line(lead: StoredPost, others: Sequence[StoredPost], say: Callable[..., str]) -> str:
    """`also in Rybar, @milinfolive, +3` (the other sources telling the story, HTML), or
    `+2 similar posts` when they came from the lead's own source; `say(key, **args)` writes
    the words (a chat's `Texts`, or a memo of them)."""
    lead_name = source_name(lead)
    names = [
        name for name in dict.fromkeys(source_name(post) for post in others) if name != lead_name
    ]
    if not names:
        return say("also-similar", count=len(others))
    shown = ", ".join(html.escape(name[:60], quote=False) for name in names[:ALSO_NAMES])
    return say("also-in", names=shown, more=len(others) - min(len(names), ALSO_NAMES))


def render_alert(
    post: StoredPost,
    queries: Sequence[str],
    spans: Sequence[Span],
    t: Texts,
    tz: tzinfo,
    *,
    limit: int = MAX_MESSAGE,
    others: Sequence[StoredPost] = (),
) -> str:
    """One alert in the chat's language and zone: the queries that matched, which source
    and when, the post with matches in bold, and its link; at most `limit` characters as
    Telegram counts them (the post is cut, the link kept)."""
    # Whitespace (newlines too) inside queries is folded so the header stays two lines.
    names = shorten(" ".join(", ".join(queries).split()), MAX_QUERIES_SHOWN)
    where = [html.escape(source_name(post), quote=False), moment_text(t, post.post.date, tz)]
    if post.post.forwarded_from:
        source = html.escape(post.post.forwarded_from[:100], quote=False)
        where.append(t("alert-forwarded", source=source))
    if post.post.media_count:
        where.append(t("alert-media", count=post.post.media_count))
    if post.post.edited:
        where.append(t("alert-edited"))
    if post.deleted:
        where.append(t("alert-deleted"))
    header = f"🔔 <b>{html.escape(names, quote=False)}</b>\n{' · '.join(where)}"
    if others:
        header += f"\n↪ {also_line(post, others, t)}"
    link = safe_link(post.post.url)
    footer = f'\n\n<a href="{link}">{t("alert-open")}</a>' if link else ""
    budget = limit - html_length(header) - html_length(footer) - 2
    budget = max(budget, MIN_EXCERPT)
    body = post.post.text.strip()
    shown = shorten(body, budget)
    # Spans refer to the stripped-before text; shift them by the leading whitespace removed.
    offset = len(post.post.text) - len(post.post.text.lstrip())
    limit = len(shown) - (len(ELLIPSIS) if shown != body else 0)
    shifted = [
        Span(s.start - offset, min(s.end - offset, limit)) for s in spans if s.start >= offset
    ]
    body_html = highlight(shown, [s for s in shifted if s.start < limit])
    return f"{header}\n\n{body_html}{footer}"


def html_length(text: str) -> int:
    """Length of our HTML as Telegram counts it: tags removed, entities decoded, UTF-16."""
    return visible_length(html.unescape(_TAG.sub("", text)))


def render_alerts(alerts: Sequence[AlertParts], t: Texts, tz: tzinfo) -> tuple[str, int]:
    """Several waiting alerts for one chat as one message within Telegram's limit, in the
    chat's language (`t`) and time zone.

    Returns the HTML and how many of `alerts` (from the front) it holds; each keeps its link
    and a share of the space; alerts that would get too little are left for the next message.
    """
    if not alerts:
        raise ValueError("no alerts to render")
    count = min(len(alerts), MAX_BATCH, max(1, MAX_MESSAGE // MIN_BATCHED_ALERT))
    while True:
        if count == 1:
            first = alerts[0]
            text = render_alert(first.post, first.queries, first.spans, t, tz, others=first.others)
            return text, 1
        title = t("alert-title", count=count)
        share = (MAX_MESSAGE - html_length(title) - visible_length(SEPARATOR) * count) // count
        parts = [
            render_alert(
                alert.post, alert.queries, alert.spans, t, tz, limit=share, others=alert.others
            )
            for alert in alerts[:count]
        ]
        text = f"<b>{title}</b>" + "".join(SEPARATOR + part for part in parts)
        if html_length(text) <= MAX_MESSAGE:
            return text, count
        count -= 1  # headers too long to share the space: fewer alerts in this message
