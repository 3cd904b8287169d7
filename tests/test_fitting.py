"""Packing reply blocks into Telegram messages: by UTF-16 length, never inside a tag."""

from __future__ import annotations

import html

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.delivery.fitting import fit_messages
from tests.botapi import parse_html, utf16_len

_PIECES = ["Орешник", "😀", "🚀🛰️", "<&>", "a" * 50, " ", "\n", "ИСКАНДЕР-М"]


def _block(pieces: list[str], bold: bool) -> str:
    text = html.escape("".join(pieces), quote=False)
    return f"<b>{text}</b>" if bold else f"• <code>{text}</code>"


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(st.sampled_from(_PIECES), max_size=400), st.booleans()),
        min_size=1,
        max_size=60,
    )
)
def test_every_message_is_one_telegram_accepts(blocks: list[tuple[list[str], bool]]) -> None:
    rendered = [_block(pieces, bold) for pieces, bold in blocks]
    messages = fit_messages(rendered, max_messages=5)
    assert len(messages) <= 5
    assert bool(messages) == any(parse_html(b) for b in rendered)  # blank blocks are dropped
    for message in messages:
        visible = parse_html(message)  # raises on a broken tag or entity
        assert 0 < utf16_len(visible) <= 4096


def test_blocks_keep_their_order_and_are_never_split() -> None:
    blocks = [f"<b>{n}</b> " + "😀" * 700 for n in range(10)]  # 1,403 units each
    messages = fit_messages(blocks)
    assert [m.count("<b>") for m in messages] == [2, 2, 2, 2, 2]
    assert "".join(messages).index("<b>3</b>") < "".join(messages).index("<b>4</b>")


def test_too_much_ends_with_a_note_that_fits() -> None:
    messages = fit_messages(["x" * 4096] * 30, max_messages=3, more="… {count} more")
    assert len(messages) == 3
    assert messages[-1].endswith("… 27 more")
    assert all(utf16_len(parse_html(m)) <= 4096 for m in messages)


def test_a_block_longer_than_a_message_is_shortened_as_text() -> None:
    (message,) = fit_messages(["<i>" + "&lt;Орешник&gt; " * 600 + "</i>"])
    assert utf16_len(parse_html(message)) <= 4096
    assert message.startswith("&lt;Орешник&gt;")
    assert message.endswith("…")
