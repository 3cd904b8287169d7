"""The buttons of `/list`: typed callback data and the keyboard of one page of queries.

Every button names what it does and to which query, so a press is understood without any
state kept between updates: `ql:<action>:<subscription id>:<page>:<owner>`. The owner is 0
for the chat the list is in, or the id of a channel whose queries are managed from that chat.
Mode buttons carry the mode they set (not "next"), so a press on an outdated keyboard, or two
quick presses, can never leave a query in a mode nobody chose.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder
from pydantic import Field

from bot.domain import MODE_BOTH, MODE_DIGEST, MODE_INSTANT, Subscription
from bot.i18n import Texts

MAX_PAGE = 1_000  # more than a chat's queries can fill; a larger page is forged


class Action(StrEnum):
    """What a button of `/list` does (one letter: callback data is at most 64 bytes)."""

    PAUSE = "p"
    RESUME = "r"
    REMOVE = "x"
    BOTH = "b"  # set the mode to instant alerts and the digest
    INSTANT = "i"  # ... to instant alerts only
    DIGEST = "d"  # ... to the digest only
    PAGE = "g"  # show another page


MODE_OF_ACTION = {Action.BOTH: MODE_BOTH, Action.INSTANT: MODE_INSTANT, Action.DIGEST: MODE_DIGEST}
ACTION_OF_MODE = {mode: action for action, mode in MODE_OF_ACTION.items()}
# A query's mode button moves it on around this cycle.
NEXT_MODE = {MODE_BOTH: MODE_INSTANT, MODE_INSTANT: MODE_DIGEST, MODE_DIGEST: MODE_BOTH}


class QueryButton(CallbackData, prefix="ql"):
    """A press on `/list`: the action, the query (0 for paging), the page the list showed and
    whose queries they are (0: this chat's; else a channel's)."""

    action: Action
    id: int = Field(ge=0)
    page: int = Field(ge=0, le=MAX_PAGE)
    owner: int = 0


def is_query_button(data: str | None) -> bool:
    """Whether callback data claims to be a `/list` button (well formed or not)."""
    return data is not None and data.startswith(QueryButton.__prefix__ + QueryButton.__separator__)


def _button(
    text: str, action: Action, subscription_id: int, page: int, owner: int
) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=text,
        callback_data=QueryButton(
            action=action, id=subscription_id, page=page, owner=owner
        ).pack(),
    )


def list_keyboard(
    t: Texts,
    shown: Sequence[tuple[int, Subscription]],
    *,
    page: int,
    pages: int,
    owner: int,
) -> InlineKeyboardMarkup:
    """One row per query shown (`(number, subscription)`): pause or resume, mode, remove;
    then ◀ ▶ when the list has more than one page."""
    builder = InlineKeyboardBuilder()
    for number, subscription in shown:
        if subscription.paused:
            pause = _button(
                t("list-button-resume", number=number), Action.RESUME, subscription.id, page, owner
            )
        else:
            pause = _button(
                t("list-button-pause", number=number), Action.PAUSE, subscription.id, page, owner
            )
        mode = subscription.mode if subscription.mode in NEXT_MODE else MODE_BOTH
        switch = _button(
            t(f"list-button-mode-{mode}", number=number),
            ACTION_OF_MODE[NEXT_MODE[mode]],
            subscription.id,
            page,
            owner,
        )
        remove = _button(
            t("list-button-remove", number=number), Action.REMOVE, subscription.id, page, owner
        )
        builder.row(pause, switch, remove)
    if pages > 1:
        paging = []
        if page > 0:
            paging.append(_button(t("list-button-previous"), Action.PAGE, 0, page - 1, owner))
        if page < pages - 1:
            paging.append(_button(t("list-button-next"), Action.PAGE, 0, page + 1, owner))
        builder.row(*paging)
    return builder.as_markup()
