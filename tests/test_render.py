"""Alert rendering: whatever a post holds, Telegram gets valid HTML within 4096 visible units.

`parse_telegram_html` below is a strict stand-in for Telegram's HTML parser: only the tags the
bot uses, balanced, nothing bare, and the visible text measured in UTF-16 code units.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest

from bot.delivery.render import (
    ELLIPSIS,
    MAX_MESSAGE,
    AlertParts,
    highlight,
    html_length,
    render_alert,
    render_alerts,
    safe_link,
    shorten,
    visible_length,
)
from bot.domain import Post, Span, StoredPost
from bot.i18n import Catalog, Texts

CATALOG = Catalog(strict=True)
EN = CATALOG.texts("en")
RU = CATALOG.texts("ru")

ALLOWED_TAGS = {"b", "i", "a", "code"}
FOOTER = "\n\nOpen the original post"
URL = "https://t.me/ch/1"
DATE = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)

_ENTITY_RE = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
_TAG_START_RE = re.compile(r"</?(?:b|i|a|code)[\s>]")


@dataclass
class TelegramMessage:
    """What a chat shows for an HTML message: its text, its links and its bold pieces."""

    text: str
    links: list[str] = field(default_factory=list)
    bold: list[str] = field(default_factory=list)


class _StrictParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.text: list[str] = []
        self.links: list[str] = []
        self.bold: list[str] = []
        self.stack: list[str] = []
        self._bold_start: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in ALLOWED_TAGS, f"tag <{tag}> is not allowed"
        if tag == "a":
            assert [name for name, _ in attrs] == ["href"], f"<a> needs only href: {attrs}"
            href = attrs[0][1] or ""
            assert href.startswith(("https://", "http://")), f"unsafe href {href!r}"
            self.links.append(href)
        else:
            assert not attrs, f"<{tag}> must have no attributes: {attrs}"
        if tag == "b":
            self._bold_start.append(len("".join(self.text)))
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise AssertionError(f"self-closing <{tag}/> is not allowed")

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> closes nothing"
        assert self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1]}>"
        self.stack.pop()
        if tag == "b":
            self.bold.append("".join(self.text)[self._bold_start.pop() :])

    def handle_data(self, data: str) -> None:
        for bare in "<>&":
            assert bare not in data, f"bare {bare!r} in text {data[:80]!r}"
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        self.text.append({"lt": "<", "gt": ">", "amp": "&", "quot": '"'}[name])

    def handle_charref(self, name: str) -> None:
        number = int(name[1:], 16) if name[:1] in "xX" else int(name)
        self.text.append(chr(number))

    def handle_comment(self, data: str) -> None:
        raise AssertionError(f"comment <!--{data}--> is not allowed")

    def handle_decl(self, decl: str) -> None:
        raise AssertionError(f"declaration <!{decl}> is not allowed")

    def handle_pi(self, data: str) -> None:
        raise AssertionError(f"processing instruction <?{data}> is not allowed")

    def unknown_decl(self, data: str) -> None:
        raise AssertionError(f"declaration <![{data}]> is not allowed")


def parse_telegram_html(message: str) -> TelegramMessage:
    """Check a message as Telegram's HTML mode would and return what the chat shows."""
    for index, char in enumerate(message):
        if char == "&":
            assert _ENTITY_RE.match(message, index), f"bare & at {index}: {message[index:][:20]!r}"
        elif char == "<":
            assert _TAG_START_RE.match(message, index), (
                f"bare < at {index}: {message[index:][:20]!r}"
            )
    parser = _StrictParser()
    parser.feed(message)
    parser.close()
    assert not parser.stack, f"unclosed tags: {parser.stack}"
    text = "".join(parser.text)
    units = len(text.encode("utf-16-le")) // 2
    assert units <= MAX_MESSAGE, f"{units} visible UTF-16 units, more than {MAX_MESSAGE}"
    return TelegramMessage(text, parser.links, parser.bold)


def _stored(
    text: str,
    *,
    url: str | None = URL,
    channel: str = "ch",
    edited: bool = False,
    deleted: bool = False,
    date: datetime = DATE,
    title: str | None = None,
) -> StoredPost:
    post = Post("jsonl", channel, "1", date, text, url, edited, channel_title=title)
    return StoredPost(1, post, deleted=deleted)


def _render(
    text: str,
    spans: Sequence[Span] = (),
    queries: Sequence[str] = ("Oreshnik",),
    tz: tzinfo = UTC,
    t: Texts = EN,
    **post: object,
) -> tuple[str, TelegramMessage]:
    stored = _stored(text, **post)  # type: ignore[arg-type]
    rendered = render_alert(stored, queries, spans, t, tz)
    return rendered, parse_telegram_html(rendered)


def _header(shown: TelegramMessage) -> str:
    return shown.text.split("\n\n", 1)[0]


def _body(shown: TelegramMessage) -> str:
    return shown.text.split("\n\n", 1)[1].removesuffix(FOOTER)


def _words(n_chars: int) -> str:
    """Deterministic prose of mixed Latin and Cyrillic words, `n_chars` code points long."""
    vocabulary = ["Oreshnik", "ракета", "launch", "Капустин", "Яр", "test", "intermediate"]
    words = itertools.cycle(vocabulary)
    text = ""
    while len(text) < n_chars:
        text += next(words) + ("\n" if len(text) % 7 == 0 else " ")
    return text[:n_chars]


HOSTILE_TEXTS = [
    "<script>alert(1)</script>",
    "<b>unclosed",
    "a & b < c > d",
    "&amp; literally, and &lt;b&gt;",
    "quotes \" and ' and `backticks`",
    "closing </a> and </b> in text",
    '<a href="javascript:alert(1)">click</a>',
    "\u202eRTL override\u202c and \u200fmarks\u200e",
    "emoji 🚀🛰️👩‍🚀 and flags 🇺🇦🇷🇺",
    "combining: e\u0301 и\u0306 a\u0308\u0304",
    "Запуск «Орешника» — ракета средней дальности",
    "<![CDATA[x]]> <!-- comment --> <?pi?> <!DOCTYPE html>",
    "&#60;b&#62; and &#x3C;i&#x3E; numeric references",
]


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_hostile_post_text_is_valid_html_and_shown_verbatim(text: str) -> None:
    _, shown = _render(text)
    assert _body(shown) == text
    assert shown.links == [URL]


@pytest.mark.parametrize("hostile", HOSTILE_TEXTS)
def test_hostile_queries_and_channel_are_escaped_in_the_header(hostile: str) -> None:
    _, shown = _render("Oreshnik launched", queries=[hostile], channel=hostile)
    assert _header(shown).startswith(f"🔔 {hostile}\n{hostile} · 20 Nov 06:30 UTC")
    assert shown.bold == [hostile]  # the query line, and nothing the text smuggled in


@pytest.mark.parametrize(
    ("text", "spans", "bold"),
    [
        ("The Oreshnik launch", [Span(4, 12)], ["Oreshnik"]),
        ("Oreshnik and Burevestnik", [Span(0, 8), Span(13, 24)], ["Oreshnik", "Burevestnik"]),
        ("Oreshnik and Burevestnik", [Span(13, 24), Span(0, 8)], ["Oreshnik", "Burevestnik"]),
        ("Запуск «Орешника» с полигона", [Span(8, 16)], ["Орешника"]),
        ("🚀 Oreshnik 🚀", [Span(2, 10)], ["Oreshnik"]),
        ("a<b> & Oreshnik", [Span(7, 15)], ["Oreshnik"]),
        ("x < y & Oreshnik > z", [Span(0, 1), Span(8, 16)], ["x", "Oreshnik"]),
        ("  \n The Oreshnik launch", [Span(8, 16)], ["Oreshnik"]),  # leading blanks stripped
        ("The Oreshnik", [Span(4, 12)], ["Oreshnik"]),  # span at the very end
    ],
)
def test_spans_bold_exactly_the_matched_words(
    text: str, spans: list[Span], bold: list[str]
) -> None:
    rendered, shown = _render(text, spans)
    assert shown.bold[1:] == bold  # bold[0] is the query line in the header
    assert _body(shown) == text.strip()
    for word in bold:
        assert f"<b>{word}</b>" in rendered


@pytest.mark.parametrize(
    "spans",
    [
        [Span(4, 12), Span(6, 10)],  # nested
        [Span(4, 10), Span(8, 16)],  # overlapping
        [Span(4, 12), Span(4, 12)],  # duplicated
        [Span(0, 1000)],  # past the end
        [Span(500, 600)],  # entirely outside
        [Span(-3, 2)],  # negative
        [Span(10, 4)],  # reversed
        [Span(5, 5)],  # empty
        [Span(i, i + 3) for i in range(0, 19, 2)],  # a staircase of overlaps
    ],
)
def test_odd_spans_never_break_or_change_the_text(spans: list[Span]) -> None:
    text = "The Oreshnik launch"
    _, plain = _render(text)
    _, shown = _render(text, spans)
    assert shown.text == plain.text
    assert len(shown.bold) <= 1 + len(spans)


@pytest.mark.parametrize("length", [5_000, 10_000, 100_000])
def test_long_post_is_cut_on_a_word_and_keeps_the_link(length: int) -> None:
    text = _words(length)
    _, shown = _render(text, [Span(0, 8)])
    body = _body(shown)
    assert shown.text.endswith(FOOTER)
    assert shown.links == [URL]
    assert body.endswith(ELLIPSIS)
    kept = body.removesuffix(ELLIPSIS)
    assert text.startswith(kept)
    assert text[len(kept)].isspace()  # the last shown word is whole
    # Cutting must not throw away much more than it needs to.
    assert visible_length(shown.text) > MAX_MESSAGE - 30


def test_post_that_exactly_fits_is_not_cut() -> None:
    _, short = _render("x")
    room = MAX_MESSAGE - visible_length(short.text) + 1
    text = _words(room - 1) + "x"  # no trailing blank, which would be stripped
    _, shown = _render(text)
    assert _body(shown) == text.strip()
    assert visible_length(shown.text) == MAX_MESSAGE
    _, over = _render(text + "y")
    assert _body(over).endswith(ELLIPSIS)


@pytest.mark.parametrize("emoji", ["🚀", "🛰\ufe0f", "🇺🇦"])
def test_post_of_only_emoji_fits(emoji: str) -> None:
    text = emoji * 5_000  # at least 10,000 UTF-16 units
    _, shown = _render(text)
    body = _body(shown)
    assert body.endswith(ELLIPSIS)
    kept = body.removesuffix(ELLIPSIS)
    assert text.startswith(kept)
    assert visible_length(kept) > MAX_MESSAGE - 100
    assert shown.links == [URL]


def test_span_past_the_cut_leaves_no_bold_behind() -> None:
    text = _words(10_000)
    rendered, shown = _render(text, [Span(0, 8), Span(9_000, 9_008)])
    assert shown.bold[1:] == ["Oreshnik"]
    assert rendered.count("<b>") == rendered.count("</b>") == 2


def test_span_across_the_cut_is_closed_before_the_ellipsis() -> None:
    text = _words(10_000)
    _, plain = _render(text)
    kept = len(_body(plain)) - len(ELLIPSIS)
    rendered, shown = _render(text, [Span(kept - 4, kept + 40)])
    assert shown.bold[1:] == [text[kept - 4 : kept]]
    assert f"</b>{ELLIPSIS}" in rendered
    assert shown.text == plain.text


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        " javascript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "tg://resolve?domain=evil",
        "ftp://example.org/file",
        "//example.org/no-scheme",
        "https://example.org/" + "a" * 2_100,
        "",
        None,
    ],
)
def test_unsafe_or_overlong_url_never_becomes_a_link(url: str | None) -> None:
    rendered, shown = _render("Oreshnik launched", url=url)
    assert shown.links == []
    assert "<a" not in rendered
    assert "Open the original post" not in shown.text
    assert safe_link(url) is None


def test_link_with_query_string_and_quotes_keeps_its_target() -> None:
    url = "https://example.org/p?a=1&b=\"2\"&c='3'<>"
    rendered, shown = _render("Oreshnik", url=url)
    assert shown.links == [url]
    assert '"2"' not in rendered  # the quotes cannot close the href attribute


def test_many_long_queries_still_fit() -> None:
    queries = [f"query {n} " + "Oreshnik OR Орешник " * 24 for n in range(100)]
    _, shown = _render(_words(10_000), [Span(0, 8)], queries=queries)
    names = _header(shown).split("\n", 1)[0]
    assert names.startswith("🔔 query 0 Oreshnik")
    assert names.endswith(ELLIPSIS)
    assert visible_length(names) <= 310
    assert shown.links == [URL]
    assert _body(shown).endswith(ELLIPSIS)


def test_query_with_a_newline_is_shown_once() -> None:
    # parse_query keeps inner newlines: `/subscribe Oreshnik⏎OR Burevestnik` is one query.
    _, shown = _render("Oreshnik and Burevestnik", queries=["Oreshnik\nOR Burevestnik"])
    assert shown.text.count("OR Burevestnik") == 1


def test_multi_line_query_with_a_long_post_still_fits() -> None:
    query = "Oreshnik\nOR " + " OR ".join(["Burevestnik"] * 20)
    _render(_words(10_000), queries=[query])  # parse_telegram_html checks the length


@pytest.mark.parametrize(
    ("edited", "deleted", "marks"),
    [
        (False, False, ""),
        (True, False, " · edited"),
        (False, True, " · deleted"),
        (True, True, " · edited · deleted"),
    ],
)
def test_header_says_whether_the_post_was_edited_or_deleted(
    edited: bool, deleted: bool, marks: str
) -> None:
    _, shown = _render("Oreshnik", edited=edited, deleted=deleted)
    assert _header(shown).endswith(f"20 Nov 06:30 UTC{marks}")


@pytest.mark.parametrize(
    ("date", "tz", "shown_as"),
    [
        (DATE, UTC, "20 Nov 06:30 UTC"),
        (DATE, ZoneInfo("Europe/Moscow"), "20 Nov 09:30 MSK"),
        (DATE, ZoneInfo("America/New_York"), "20 Nov 01:30 EST"),
        (
            datetime(2026, 11, 20, 22, 30, tzinfo=UTC),
            ZoneInfo("Europe/Moscow"),
            "21 Nov 01:30 MSK",
        ),
        (datetime(2026, 7, 1, 12, 0, tzinfo=UTC), ZoneInfo("Europe/Berlin"), "1 Jul 14:00 CEST"),
        (datetime(2026, 1, 1, 12, 0, tzinfo=UTC), ZoneInfo("Europe/Berlin"), "1 Jan 13:00 CET"),
        (DATE, ZoneInfo("Europe/Minsk"), "20 Nov 09:30 UTC+3"),  # tzdata has no letters
        (DATE, ZoneInfo("Asia/Kathmandu"), "20 Nov 12:15 UTC+5:45"),
    ],
)
def test_date_is_shown_in_the_chats_time_zone(date: datetime, tz: tzinfo, shown_as: str) -> None:
    _, shown = _render("Oreshnik", tz=tz, date=date)
    assert _header(shown).splitlines()[1] == f"ch · {shown_as}"


@pytest.mark.parametrize(
    ("text", "units"),
    [("", 0), ("abc", 3), ("Орешник", 7), ("🚀", 2), ("🇺🇦", 4), ("e\u0301", 2), ("👩‍🚀", 5)],
)
def test_visible_length_counts_utf16_units(text: str, units: int) -> None:
    assert visible_length(text) == units


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short text", 100, "short text"),
        ("exactly ten", 11, "exactly ten"),
        ("one two three four five", 15, "one two three…"),
        ("one two three four five", 14, "one two three…"),  # cut falls on a word end
        ("one two three four five", 12, "one two…"),
        ("averyveryverylongword", 10, "averyvery…"),
        ("🚀🚀🚀🚀🚀", 6, "🚀🚀…"),
        ("ракета средней дальности", 16, "ракета средней…"),
    ],
)
def test_shorten_respects_the_limit_and_words(text: str, limit: int, expected: str) -> None:
    shortened = shorten(text, limit)
    assert shortened == expected
    assert visible_length(shortened) <= limit


@pytest.mark.parametrize(
    ("text", "spans", "expected"),
    [
        ("a<b>c", [], "a&lt;b&gt;c"),
        ("a & b", [Span(4, 5)], "a &amp; <b>b</b>"),
        ("Oreshnik", [Span(0, 8)], "<b>Oreshnik</b>"),
        ("Oreshnik", [Span(0, 3), Span(2, 6)], "<b>Ore</b><b>shn</b>ik"),
        ("Oreshnik", [Span(20, 30)], "Oreshnik"),
    ],
)
def test_highlight_escapes_and_bolds(text: str, spans: list[Span], expected: str) -> None:
    assert highlight(text, spans) == expected


@pytest.mark.parametrize(
    "message",
    [
        "<b>unclosed",
        "<b><i>crossed</b></i>",
        "<script>x</script>",
        "a < b",
        "a & b",
        '<a href="javascript:x">x</a>',
        "<b>" + "x" * (MAX_MESSAGE + 1) + "</b>",
        "🚀" * (MAX_MESSAGE // 2 + 1),
    ],
)
def test_the_checker_itself_rejects_what_telegram_would(message: str) -> None:
    with pytest.raises(AssertionError):
        parse_telegram_html(message)


# --- several alerts in one message ------------------------------------------------------------


def _parts(texts: Sequence[str], queries: Sequence[str] = ("Oreshnik",)) -> list[AlertParts]:
    parts = []
    for number, text in enumerate(texts, start=1):
        post = Post("jsonl", "ch", str(number), DATE, text, f"https://t.me/ch/{number}")
        start = text.find("Oreshnik")
        spans = [Span(start, start + 8)] if start >= 0 else []
        parts.append(AlertParts(StoredPost(number, post), queries, spans))
    return parts


def test_a_burst_reads_as_one_message_with_every_link() -> None:
    parts = _parts(["Oreshnik one", "Oreshnik two", "Oreshnik three"])
    text, used = render_alerts(parts, EN, UTC)
    shown = parse_telegram_html(text)
    assert used == 3
    assert shown.text.startswith("🔔 3 new matches")
    assert shown.links == [f"https://t.me/ch/{n}" for n in (1, 2, 3)]
    assert shown.bold.count("Oreshnik") == 6  # each query name and each match


@pytest.mark.parametrize(
    "text",
    [
        _words(10_000),
        "🚀" * 5_000,
        "<b>&amp;</b> " * 1_500,
        "a" * 9_000,  # no word boundary anywhere
        "Oreshnik\n" * 2_000,
    ],
    ids=["prose", "emoji", "markup", "one-word", "lines"],
)
def test_hostile_bursts_fit_and_keep_every_link(text: str) -> None:
    queries = ["x" * 200, "Oreshnik", "<script>"]
    remaining = _parts([text] * 25, queries)
    links: list[str] = []
    while remaining:
        rendered, used = render_alerts(remaining, EN, UTC)
        shown = parse_telegram_html(rendered)  # balanced, escaped, within 4096
        assert len(shown.links) == used
        links += shown.links
        remaining = remaining[used:]
    assert links == [f"https://t.me/ch/{n}" for n in range(1, 26)]


def test_html_length_counts_what_the_chat_shows() -> None:
    assert html_length('<b>a&amp;b</b> <a href="https://x.y/?a=1&amp;b=2">🚀</a>') == 6


def test_the_header_names_the_channel_by_its_title() -> None:
    # Two Google Alerts feeds share a host (the channel key); their titles tell them apart.
    for title in ("Google Alert - Oreshnik", "Google Alert - INF Treaty"):
        _, shown = _render("Oreshnik", channel="google.com", title=title)
        assert _header(shown).splitlines()[1] == f"{title} · 20 Nov 06:30 UTC"
    _, untitled = _render("Oreshnik", channel="google.com")
    assert _header(untitled).splitlines()[1] == "google.com · 20 Nov 06:30 UTC"


@pytest.mark.parametrize("hostile", HOSTILE_TEXTS)
def test_a_hostile_title_is_escaped_in_the_header(hostile: str) -> None:
    _, shown = _render("Oreshnik launched", title=hostile)
    assert _header(shown).startswith(f"🔔 Oreshnik\n{hostile} · 20 Nov 06:30 UTC")
    assert shown.bold == ["Oreshnik"]


# --- the chat's language ------------------------------------------------------------------------


def test_an_alert_in_russian_in_the_chats_zone_names_the_source_never_its_kind() -> None:
    post = Post(
        "tgweb",
        "milinfolive",
        "7",
        DATE,
        "Запуск «Орешника»",
        URL,
        edited=True,
        forwarded_from="Рыбарь",
        media_count=3,
        channel_title="Военная хроника",
    )
    rendered = render_alert(
        StoredPost(7, post), ["Орешник"], [Span(8, 16)], RU, ZoneInfo("Europe/Moscow")
    )
    shown = parse_telegram_html(rendered)
    assert _header(shown) == (
        "🔔 Орешник\n"
        "Военная хроника · 20 нояб. 09:30 MSK · переслано из Рыбарь · 3 фото/видео · изменён"
    )
    assert shown.text.endswith("\n\nОткрыть исходный пост")
    assert "tgweb" not in shown.text
    assert shown.links == [URL]


@pytest.mark.parametrize(
    ("count", "english", "russian"),
    [
        (2, "🔔 2 new matches", "🔔 2 новых совпадения"),
        (5, "🔔 5 new matches", "🔔 5 новых совпадений"),
        (3, "🔔 3 new matches", "🔔 3 новых совпадения"),
    ],
)
def test_a_burst_is_titled_with_the_right_plural(count: int, english: str, russian: str) -> None:
    parts = _parts([f"Oreshnik {n}" for n in range(count)])
    for t, title in ((EN, english), (RU, russian)):
        text, used = render_alerts(parts, t, UTC)
        assert used == count
        assert parse_telegram_html(text).text.startswith(title + "\n")


@pytest.mark.parametrize(
    ("count", "english", "russian"),
    [(1, "1 photo/video", "1 фото/видео"), (4, "4 photos/videos", "4 фото/видео")],
)
def test_media_are_counted_in_the_chats_language(count: int, english: str, russian: str) -> None:
    post = Post("rss", "ch", "1", DATE, "Oreshnik", URL, media_count=count)
    for t, words in ((EN, english), (RU, russian)):
        shown = parse_telegram_html(render_alert(StoredPost(1, post), ["q"], [], t, UTC))
        assert (
            _header(shown).splitlines()[1] == f"ch · {t.date(DATE, 'd MMM')} 06:30 UTC · {words}"
        )


def test_an_excerpt_is_one_line_around_the_first_match_with_matches_in_bold() -> None:
    from bot.delivery.render import excerpt

    text = "Intro line.\n\n   " + "filler words here " * 40 + "the <Oreshnik> & co\n" + "x " * 300
    start = text.index("Oreshnik")
    shown = excerpt(text, [Span(start, start + 8)], 120)
    assert "\n" not in shown
    assert shown.startswith("…")
    assert shown.endswith("…")
    assert "the &lt;<b>Oreshnik</b>&gt; &amp; co" in shown
    assert html_length(shown) <= 120
    # No match: the post's beginning; a short post whole; whitespace folded everywhere.
    assert excerpt("  a\n\nb   c  ", [], 120) == "a b c"
    assert excerpt("Oreshnik " * 100, [], 50).startswith("Oreshnik Oreshnik")
