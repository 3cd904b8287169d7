"""Who the bot answers: everyone, or, in a private deployment (`ALLOWED_USERS`), only some.

The rule, when `ALLOWED_USERS` is set:

* a private chat is answered when its user is allowed (listed in ALLOWED_USERS or ADMIN_IDS);
* a group (or channel) is answered when an allowed user administers it: Telegram is asked
  once (`getChatAdministrators`) and the answer kept for a few minutes. An allowed user is
  answered in any group too;
* everyone else gets one polite refusal per hour (per user in a private chat, per chat in a
  group, so a busy group is not flooded with them), then silence. A removal of the bot from a
  chat always gets through, so the chat is forgotten, and so does a group becoming a
  supergroup, so the chat follows its new id.

`AccessGate` is an outer middleware: a refused update costs a dictionary look-up, no database
read. Refusals and answers about groups are kept in memory, bounded.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Filter
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message, TelegramObject, User

from bot.config import Settings
from bot.i18n import Catalog, language_for
from handlers.groups import is_present
from handlers.language import event_place

log = logging.getLogger(__name__)

REFUSE_EVERY = 3600.0  # seconds: one refusal per user (or group) per hour, then silence
GROUP_ANSWER_SECONDS = 300.0  # how long "does an allowed user administer this group?" is kept
REMEMBERED = 10_000  # refusals and group answers kept at most (the oldest are dropped)


def is_dozor_admin(user: User | None, settings: Settings) -> bool:
    """Whether the user is one of Dozor's administrators (ADMIN_IDS)."""
    return user is not None and user.id in settings.admin_ids


def is_allowed(user: User | None, settings: Settings) -> bool:
    """Whether a private deployment answers this user anywhere (everyone, when it is public)."""
    if not settings.allowed_users:
        return True
    return user is not None and (
        user.id in settings.allowed_users or user.id in settings.admin_ids
    )


class DozorAdmin(Filter):
    """A filter: the sender is one of Dozor's administrators (ADMIN_IDS)."""

    async def __call__(self, event: TelegramObject, settings: Settings) -> bool:
        return is_dozor_admin(getattr(event, "from_user", None), settings)


class _Expiring:
    """Keys remembered with the time they were set, the oldest forgotten first when full."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._items: OrderedDict[int, tuple[float, bool]] = OrderedDict()

    def get(self, key: int, max_age: float) -> bool | None:
        item = self._items.get(key)
        if item is None or self._clock() - item[0] >= max_age:
            return None
        return item[1]

    def put(self, key: int, value: bool) -> None:
        self._items.pop(key, None)
        self._items[key] = (self._clock(), value)
        while len(self._items) > REMEMBERED:
            self._items.popitem(last=False)


class AccessGate(BaseMiddleware):
    """Answers only allowed users and the groups they administer (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # replaceable, so a test can let an hour pass
        self._refused = _Expiring(lambda: self.clock())  # key → a refusal was sent
        self._groups = _Expiring(lambda: self.clock())  # chat id → served or not

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        settings: Settings | None = data.get("settings")
        if settings is None or not settings.allowed_users:
            return await handler(event, data)
        chat, user = event_place(event)
        if is_allowed(user, settings) or _is_leaving(event) or _is_migration(event):
            return await handler(event, data)
        if chat is not None and chat.type != "private":
            if await self._group_served(data["bot"], chat.id, settings):
                return await handler(event, data)
            key = chat.id
        else:
            key = user.id if user is not None else 0
        await self._refuse(event, data, key, user)
        return None  # handled, by refusing: no router sees it

    async def _group_served(self, bot: Bot, chat_id: int, settings: Settings) -> bool:
        known = self._groups.get(chat_id, GROUP_ANSWER_SECONDS)
        if known is not None:
            return known
        try:
            administrators = await bot.get_chat_administrators(chat_id)
        except TelegramAPIError as exc:
            log.info("cannot tell who administers %d: %s", chat_id, exc)
            served = False
        else:
            served = any(is_allowed(member.user, settings) for member in administrators)
        self._groups.put(chat_id, served)
        return served

    async def _refuse(
        self, event: TelegramObject, data: dict[str, Any], key: int, user: User | None
    ) -> None:
        """The refusal, once an hour per key; a button press is always answered (silently
        after the first), or its spinner would keep turning."""
        first = self._refused.get(key, REFUSE_EVERY) is None
        if first:
            self._refused.put(key, True)
            log.info("refused update from user %s in a private deployment", user and user.id)
        catalog: Catalog = data.get("catalog") or Catalog()
        text = catalog.texts(language_for(user.language_code if user else None))("access-refused")
        try:
            if isinstance(event, CallbackQuery):
                await event.answer(text if first else None)
            elif first and isinstance(event, Message):
                await event.answer(text)
            elif first and isinstance(event, ChatMemberUpdated):
                await data["bot"].send_message(event.chat.id, text)
        except TelegramAPIError as exc:
            log.info("could not refuse politely: %s", exc)


def _is_leaving(event: TelegramObject) -> bool:
    """The bot removed from a chat (or blocked): let it through, so the chat is forgotten."""
    return isinstance(event, ChatMemberUpdated) and not is_present(event.new_chat_member)


def _is_migration(event: TelegramObject) -> bool:
    """Telegram's notice that a group became a supergroup: bookkeeping, never a request."""
    return isinstance(event, Message) and (
        event.migrate_to_chat_id is not None or event.migrate_from_chat_id is not None
    )


def install_access(router: Router) -> AccessGate:
    """Answer only allowed users on `router` (a no-op while ALLOWED_USERS is empty)."""
    gate = AccessGate()
    router.message.outer_middleware(gate)
    router.callback_query.outer_middleware(gate)
    router.my_chat_member.outer_middleware(gate)
    return gate
