"""Groups done right: the bot introduces itself once when added, forgets a group that removed
it, follows a group that became a supergroup (a new chat id) with everything it had, and lets
only a group's administrators change the group's queries and settings.

Who may do what in a group is decided in one place, `GroupAdminGate`, an inner middleware of
the root router (so it sees every router's handlers after their filters matched, including
routers added later): a command that changes the group (`MANAGING_COMMANDS`) and any button
press outside the read-only routers needs an administrator; everything else is open.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from typing import Any

from aiogram import BaseMiddleware, Bot, F, Router
from aiogram.dispatcher.event.handler import HandlerObject
from aiogram.dispatcher.flags import get_flag
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    CallbackQuery,
    Chat,
    ChatMemberRestricted,
    ChatMemberUnion,
    ChatMemberUpdated,
    Message,
    TelegramObject,
)

from bot.i18n import Catalog, Texts
from bot.ingest import Matcher
from bot.storage import Storage
from handlers.admins import AdminCheck, may_manage
from handlers.language import texts_for
from handlers.texts import code

log = logging.getLogger(__name__)

GROUP_KINDS = ("group", "supergroup")
# Commands that change a chat's queries or settings: in a group, for its administrators only.
# (/presets itself only shows the bundles; its buttons are gated as every managing button is.)
# /export changes nothing but hands out the group's whole alert history: administrators too.
MANAGING_COMMANDS = frozenset(
    {
        "subscribe",
        "unsubscribe",
        "settings",
        "lang",
        "timezone",
        "digest",
        "mute",
        "quiet",
        "previews",
        "export",
    }
)
# A handler flag: `flags={VIEW_ONLY: True}` opens a button press that changes nothing (paging
# through results, say) to every member of a group, in any router.
VIEW_ONLY = "view_only"
# The user Telegram names as the sender when an anonymous administrator acts in a group.
GROUP_ANONYMOUS_BOT = 1087968824
_GONE = ("left", "kicked")


def is_present(member: ChatMemberUnion) -> bool:
    """Whether a chat member status means "in the chat" (a restricted member may be out)."""
    if isinstance(member, ChatMemberRestricted):
        return member.is_member
    return member.status not in _GONE


# --- joining and leaving --------------------------------------------------------------


async def on_my_membership(
    event: ChatMemberUpdated,
    bot: Bot,
    db: Storage,
    matcher: Matcher,
    admins: AdminCheck,
    catalog: Catalog,
) -> None:
    """The bot's own membership changed: it joined a chat, or left it (removed, kicked, or a
    private chat blocked it). A promotion to administrator changes nothing here."""
    was_in = is_present(event.old_chat_member)
    is_in = is_present(event.new_chat_member)
    admins.forget(event.chat.id)  # whoever administers it now, ask Telegram afresh
    if was_in and not is_in:
        await _left(event.chat, db, matcher)
    elif is_in and not was_in and event.chat.type != "private":
        await _joined(event, bot, db, matcher, catalog)


async def _joined(
    event: ChatMemberUpdated, bot: Bot, db: Storage, matcher: Matcher, catalog: Catalog
) -> None:
    """Register the group (in its adder's language) and say hello: the introduction once
    ever, a one-line "back again" after a removal. A channel is registered silently (its
    readers did not ask for a bot's introduction)."""
    chat, adder = event.chat, event.from_user
    before = await db.get_subscriber(chat.id)
    subscriber = await db.upsert_subscriber(
        chat.id, chat.title or str(chat.id), kind=chat.type, tg_language=adder.language_code
    )
    queries = await db.subscriptions_of(chat.id)
    if before is not None and not before.active:
        for subscription in queries:
            if not subscription.paused:
                await matcher.add(subscription)
    if chat.type == "channel":
        return
    t = texts_for(catalog, subscriber, adder)
    if subscriber.introduced_at is None:
        text = await introduction(bot, t)
    else:
        text = t("group-back", count=len(queries))
    try:
        await bot.send_message(chat.id, text)
    except TelegramAPIError as exc:  # no right to write there (yet): it can still be used
        log.info("could not greet chat %d: %s", chat.id, exc)
        return
    if subscriber.introduced_at is None:
        await db.update_subscriber(chat.id, introduced_at=datetime.now(UTC))


async def introduction(bot: Bot, t: Texts) -> str:
    """What the bot says when added to a group: what it does, who manages it, how to start.
    Commands carry the bot's name, as a group's members must type them."""
    me = await bot.me()
    mention = f"@{me.username}" if me.username else ""
    return t(
        "group-intro",
        subscribe=code(f"/subscribe{mention} {t('example-query')}"),
        presets=f"/presets{mention}",
        help=f"/help{mention}",
    )


async def _left(chat: Chat, db: Storage, matcher: Matcher) -> None:
    """Nothing more goes to a chat that removed or blocked the bot; its queries are kept
    (and match again if it comes back)."""
    if await db.get_subscriber(chat.id) is None:
        return
    for subscription in await db.subscriptions_of(chat.id):
        await matcher.remove(subscription.id)
    await db.deactivate_subscriber(chat.id)
    log.info("chat %d (%s) removed the bot; deactivated", chat.id, chat.type)


# --- becoming a supergroup ------------------------------------------------------------


async def on_migrated(message: Message, db: Storage, matcher: Matcher) -> None:
    """A group became a supergroup, which has a new id. Telegram says so on both sides: in
    the old group (`migrate_to_chat_id`) and in the supergroup (`migrate_from_chat_id`).
    Whichever comes first moves the chat; the other finds nothing left to move. A service
    message: nothing is said."""
    if message.migrate_to_chat_id is not None:
        await follow_migration(db, matcher, message.chat.id, message.migrate_to_chat_id)
    elif message.migrate_from_chat_id is not None:
        await follow_migration(db, matcher, message.migrate_from_chat_id, message.chat.id)


async def follow_migration(db: Storage, matcher: Matcher, old_id: int, new_id: int) -> bool:
    """Move a chat's settings, queries, matches and waiting alerts to its new id and match
    for the new id from now on; False when there was nothing to move."""
    if not await db.move_chat(old_id, new_id):
        return False
    await matcher.refresh()
    log.info("group %d became supergroup %d: moved", old_id, new_id)
    return True


# --- who may change a group -----------------------------------------------------------


class GroupAdminGate(BaseMiddleware):
    """Lets only a group's administrators (anonymous ones too) change the group.

    Installed as an inner middleware of the root router: it runs after a handler's filters
    matched, so `command` is the command that handler took (a `/cmd@otherbot` never gets
    here) and `event_router` the router the handler is in.
    """

    def __init__(self, open_routers: Collection[Router]) -> None:
        # Routers whose buttons change nothing (search results, help): open to everyone.
        self._open = {id(router) for router in open_routers}

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        bot: Bot = data["bot"]
        admins: AdminCheck = data["admins"]
        t: Texts = data["t"]
        if isinstance(event, Message) and self._gated_command(event, data):
            if not await may_manage(event, bot, admins):
                await event.reply(t("group-admins-only"))
                return None
        elif isinstance(event, CallbackQuery) and self._gated_press(event, data):
            message = event.message
            assert message is not None  # _gated_press checked
            user = event.from_user
            if user.id != GROUP_ANONYMOUS_BOT and not await admins.is_admin(
                bot, message.chat.id, user.id
            ):
                await event.answer(t("group-admins-only-toast"))
                return None
        return await handler(event, data)

    @staticmethod
    def _gated_command(message: Message, data: dict[str, Any]) -> bool:
        """A managing command in a group, by the name typed or any name its handler takes
        (so an alias such as /tz for /timezone is gated too)."""
        if message.chat.type not in GROUP_KINDS:
            return False
        command = data.get("command")
        if not isinstance(command, CommandObject):
            return False
        names = {command.command.lower()}
        handler = data.get("handler")
        if isinstance(handler, HandlerObject):
            for each in handler.filters or ():
                if isinstance(each.callback, Command):
                    names.update(c for c in each.callback.commands if isinstance(c, str))
        return not names.isdisjoint(MANAGING_COMMANDS)

    def _gated_press(self, callback: CallbackQuery, data: dict[str, Any]) -> bool:
        message = callback.message
        if message is None or message.chat.type not in GROUP_KINDS:
            return False
        if get_flag(data, VIEW_ONLY):
            return False
        router = data.get("event_router")
        chain = router.chain_head if isinstance(router, Router) else ()
        return not any(id(each) in self._open for each in chain)


def install_group_gate(root: Router, open_routers: Collection[Router]) -> None:
    """Gate every handler under `root` (see `GroupAdminGate`); needs `t` in the data, so the
    language middleware must be installed on `root` too."""
    gate = GroupAdminGate(open_routers)
    root.message.middleware(gate)
    root.callback_query.middleware(gate)


def build_router() -> Router:
    router = Router(name="groups")
    router.my_chat_member.register(on_my_membership)
    router.message.register(on_migrated, F.migrate_to_chat_id | F.migrate_from_chat_id)
    return router
