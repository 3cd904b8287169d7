"""/subscribe, /unsubscribe and /list (with its buttons), for the chat itself or for a channel.

A first argument `@channel` or `-100…` (a query never starts with either) names a channel the
bot administers: an administrator of it configures its queries from a private chat with the
bot, and alerts are posted to the channel.
"""

from __future__ import annotations

import difflib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramNotFound
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    CallbackQuery,
    ChatMemberAdministrator,
    InlineKeyboardMarkup,
    Message,
    User,
)

from bot.config import Settings
from bot.delivery.chats import chat_zone, moment_text
from bot.delivery.render import highlight, safe_link, shorten
from bot.domain import Span, StoredPost, Subscriber, Subscription
from bot.i18n import Texts
from bot.ingest import Matcher
from bot.matching import QueryError, parse_query
from bot.storage import Storage, TooManySubscriptions
from handlers.admins import AdminCheck
from handlers.groups import GROUP_ANONYMOUS_BOT
from handlers.keyboards import MODE_OF_ACTION, Action, QueryButton, is_query_button, list_keyboard
from handlers.search import Searches, recent_matches
from handlers.start import register
from handlers.texts import code, escaped, example, query_invalid

log = logging.getLogger(__name__)

MAX_SUBSCRIPTIONS = 100
ECHO_CHARS = 600  # user text repeated in a reply at most (a reply must stay one message)
LISTED_QUERY_CHARS = 300  # a longer query is shown cut in /list (its number still works)
PAGE_SIZE = 6  # queries per page of /list: six rows of buttons fit a phone's screen
CLOSEST = 3  # saved queries offered when /unsubscribe TEXT matches none
CLOSEST_CUTOFF = 0.5  # difflib's similarity below which a query is not offered
PREVIEW_DAYS = 7  # /subscribe says how many stored posts of these last days would have matched
PREVIEW_POSTS = 2  # ... and shows the newest of them
EXCERPT_CHARS = 120  # one line of a previewed post
_CHANNEL = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}|-100[0-9]{1,16}")


@dataclass(frozen=True, slots=True)
class Target:
    """Whose queries a command or a button changes: the chat itself, or a channel."""

    chat_id: int
    channel: str | None = None  # the channel's title (plain text); None: the chat itself

    @property
    def owner(self) -> int:
        """The owner field of this target's buttons (0 stands for the chat they are in)."""
        return 0 if self.channel is None else self.chat_id

    def shown(self) -> str:
        """The channel's name for a reply (escaped, bold)."""
        return f"<b>{escaped(self.channel or '')}</b>"


def split_target(args: str) -> tuple[str | None, str]:
    """`@channel rest` → ("@channel", "rest"); anything else → (None, args)."""
    parts = args.split(maxsplit=1)
    if parts and (parts[0].startswith("@") or re.fullmatch(r"-100[0-9]*", parts[0])):
        return parts[0], parts[1] if len(parts) > 1 else ""
    return None, args


def normal(query: str) -> str:
    """A query as compared by /unsubscribe TEXT: case and spacing do not matter."""
    return " ".join(query.casefold().split())


# --- channels ----------------------------------------------------------------------------


async def resolve_channel(
    message: Message, bot: Bot, admins: AdminCheck, t: Texts, reference: str
) -> Target | str:
    """The channel `reference` names, if the bot and the sender both administer it; otherwise
    the refusal to send (one line, in the chat's language)."""
    if message.chat.type != "private":
        return t("channel-private-only")
    shown = code(shorten(reference, 64))
    if not _CHANNEL.fullmatch(reference):
        return t("channel-not-found", channel=shown)
    try:
        chat = await bot.get_chat(int(reference) if reference.startswith("-") else reference)
    except (TelegramBadRequest, TelegramForbiddenError, TelegramNotFound):
        return t("channel-not-found", channel=shown)
    if chat.type != "channel":
        return t("channel-not-channel", channel=shown)
    target = Target(chat.id, chat.title or reference)
    me = await bot.me()
    try:
        member = await bot.get_chat_member(chat.id, me.id)
    except (TelegramBadRequest, TelegramForbiddenError, TelegramNotFound):
        member = None
    if not isinstance(member, ChatMemberAdministrator) or member.can_post_messages is False:
        return t("channel-bot-not-admin", channel=target.shown())
    user = message.from_user
    if user is None or not await admins.is_admin(bot, chat.id, user.id):
        return t("channel-user-not-admin", channel=target.shown())
    return target


async def target_of(
    message: Message, reference: str | None, bot: Bot, admins: AdminCheck, t: Texts
) -> Target | None:
    """The chat itself, or the channel named (None after replying with a refusal)."""
    if reference is None:
        return Target(message.chat.id)
    resolved = await resolve_channel(message, bot, admins, t, reference)
    if isinstance(resolved, str):
        await message.answer(resolved)
        return None
    return resolved


async def register_channel(
    db: Storage, matcher: Matcher, target: Target, user: User | None
) -> None:
    """Save a channel as a subscriber (alerts go there); a channel back after the bot was
    removed from it has its queries matched again. It speaks its first configurer's language."""
    before = await db.get_subscriber(target.chat_id)
    language = user.language_code if user is not None and before is None else None
    await db.upsert_subscriber(
        target.chat_id, target.channel or "", kind="channel", tg_language=language
    )
    if before is not None and not before.active:
        for subscription in await db.subscriptions_of(target.chat_id):
            if not subscription.paused:
                await matcher.add(subscription)


# --- /subscribe ----------------------------------------------------------------------------


def excerpt(text: str, spans: Sequence[Span], width: int = EXCERPT_CHARS) -> str:
    """One line of a post around its first match, escaped, the matched words in bold."""
    flat = text.replace("\n", " ").replace("\t", " ")  # same length: the spans still fit
    ordered = sorted(spans, key=lambda span: span.start)
    first = ordered[0].start if ordered else 0
    start = max(0, first - width // 4)
    if start:
        space = flat.find(" ", start, first)
        start = space + 1 if space >= 0 else start  # begin on a word
    end = min(len(flat), start + width)
    inside = [
        Span(max(s.start, start) - start, min(s.end, end) - start)
        for s in ordered
        if s.end > start and s.start < end
    ]
    body = highlight(flat[start:end], inside)
    return ("…" if start else "") + body + ("…" if end < len(flat) else "")


def preview_line(t: Texts, post: StoredPost, spans: Sequence[Span], zone: tzinfo) -> str:
    """`• channel · time — excerpt`, the channel and time linking to the post."""
    name = shorten(post.post.channel_title or post.post.channel, 64)
    when = moment_text(t, post.post.date, zone)
    label = escaped(f"{name} · {when}")
    link = safe_link(post.post.url)
    source = f'<a href="{link}">{label}</a>' if link else label
    return t("subscribe-preview-post", source=source, excerpt=excerpt(post.post.text, spans))


async def preview(db: Storage, searches: Searches, t: Texts, query: str, zone: tzinfo) -> str:
    """How many stored posts of the last days the query would have matched, and the newest."""
    since = datetime.now(UTC) - timedelta(days=PREVIEW_DAYS)
    count, newest, finished = await recent_matches(
        db, searches, query, since, newest=PREVIEW_POSTS
    )
    if count == 0:
        key = "subscribe-preview-none" if finished else "subscribe-preview-slow"
        return t(key, days=PREVIEW_DAYS)
    key = "subscribe-preview" if finished else "subscribe-preview-at-least"
    lines = [t(key, count=count, days=PREVIEW_DAYS)]
    lines += [preview_line(t, post, spans, zone) for post, spans in newest]
    return "\n".join(lines)


async def cmd_subscribe(
    message: Message,
    command: CommandObject,
    bot: Bot,
    db: Storage,
    matcher: Matcher,
    admins: AdminCheck,
    searches: Searches,
    settings: Settings,
    subscriber: Subscriber | None,
    t: Texts,
) -> None:
    """Save a query after checking it parses; the index takes it at once. The reply shows
    what it would have found lately, so a query too broad or too narrow shows at once."""
    reference, text = split_target((command.args or "").strip())
    if not text:
        await message.answer(t("subscribe-usage", example=example(t, "subscribe")))
        return
    try:
        query = parse_query(text)
    except QueryError as exc:
        await message.answer(query_invalid(t, exc, "subscribe"))
        return
    target = await target_of(message, reference, bot, admins, t)
    if target is None:
        return
    if target.channel is None:
        await register(message, db, matcher)
    else:
        await register_channel(db, matcher, target, message.from_user)
    suffix = "" if target.channel is None else "-channel"
    try:
        subscription = await db.add_subscription(
            target.chat_id, query.text, limit=MAX_SUBSCRIPTIONS
        )
    except TooManySubscriptions as exc:
        await message.answer(
            t(f"subscribe{suffix}-too-many", count=exc.count, channel=target.shown())
        )
        return
    if subscription is None:
        await message.answer(
            t(f"subscribe{suffix}-duplicate", query=code(query.text), channel=target.shown())
        )
        return
    await matcher.add(subscription)
    done = t(
        f"subscribe{suffix}-done",
        query=code(query.text),
        channel=target.shown(),
        list=code(f"/list {reference}"),
    )
    found = await preview(db, searches, t, query.text, chat_zone(subscriber, settings.tz))
    await message.answer(f"{done}\n\n{found}")


# --- /unsubscribe --------------------------------------------------------------------------


def closest(target: str, subscriptions: Sequence[Subscription]) -> list[int]:
    """The numbers (1-based) of the saved queries most like `target`, best first: those
    containing it, then those difflib finds similar."""
    wanted = normal(target)
    queries = [normal(s.query) for s in subscriptions]
    containing = [n for n, query in enumerate(queries, start=1) if wanted and wanted in query]
    similar = difflib.get_close_matches(wanted, queries, n=CLOSEST, cutoff=CLOSEST_CUTOFF)
    numbers = containing + [queries.index(query) + 1 for query in similar]
    return list(dict.fromkeys(numbers))[:CLOSEST]


def numbered(number: int, subscription: Subscription) -> str:
    return f"{number}. {code(shorten(subscription.query, LISTED_QUERY_CHARS))}"


async def cmd_unsubscribe(
    message: Message,
    command: CommandObject,
    bot: Bot,
    db: Storage,
    matcher: Matcher,
    admins: AdminCheck,
    t: Texts,
) -> None:
    """Remove a query given by its number in /list or by its text (case and spacing aside);
    a text that matches none gets the closest saved queries offered."""
    reference, wanted = split_target((command.args or "").strip())
    if not wanted:
        await message.answer(t("unsubscribe-usage", example=code("/unsubscribe 1")))
        return
    target = await target_of(message, reference, bot, admins, t)
    if target is None:
        return
    subscriptions = await db.subscriptions_of(target.chat_id)
    chosen = None
    if wanted.isascii() and wanted.isdigit():  # "²".isdigit() is True, int("²") fails
        number = int(wanted)
        if 1 <= number <= len(subscriptions):
            chosen = subscriptions[number - 1]
    else:
        chosen = next((s for s in subscriptions if normal(s.query) == normal(wanted)), None)
    if chosen is None:
        shown = code(shorten(wanted, ECHO_CHARS))
        offered = closest(wanted, subscriptions) if not wanted.isdigit() else []
        if offered:
            lines = "\n".join(numbered(n, subscriptions[n - 1]) for n in offered)
            await message.answer(t("unsubscribe-closest", query=shown, closest=lines))
        else:
            await message.answer(t("unsubscribe-unknown", query=shown))
        return
    await db.remove_subscription(chosen.id)
    await matcher.remove(chosen.id)
    suffix = "" if target.channel is None else "-channel"
    await message.answer(
        t(f"unsubscribe{suffix}-done", query=code(chosen.query), channel=target.shown())
    )


# --- /list and its buttons -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: its text, its buttons (None when the list is empty), its index."""

    text: str
    keyboard: InlineKeyboardMarkup | None
    page: int


def render_page(
    t: Texts, target: Target, subscriptions: Sequence[Subscription], page: int
) -> Page:
    """Page `page` of a chat's queries (the last page when the list has become shorter)."""
    if not subscriptions:
        if target.channel is None:
            return Page(t("list-empty", example=example(t, "subscribe")), None, 0)
        return Page(t("list-channel-empty", channel=target.shown()), None, 0)
    pages = math.ceil(len(subscriptions) / PAGE_SIZE)
    page = min(page, pages - 1)
    first = page * PAGE_SIZE
    shown = list(enumerate(subscriptions[first : first + PAGE_SIZE], start=first + 1))
    if target.channel is None:
        title = t("list-title", count=len(subscriptions))
    else:
        title = t("list-channel-title", count=len(subscriptions), channel=target.shown())
    if pages > 1:
        title += "\n" + t("list-page", page=page + 1, pages=pages)
    items = [
        t(
            "list-item",
            number=number,
            query=code(shorten(s.query, LISTED_QUERY_CHARS)),
            mode=t(f"list-mode-{s.mode}"),
            paused="yes" if s.paused else "no",
        )
        for number, s in shown
    ]
    text = "\n\n".join([title, *items, t("list-legend")])
    keyboard = list_keyboard(t, shown, page=page, pages=pages, owner=target.owner)
    return Page(text, keyboard, page)


async def cmd_list(
    message: Message,
    command: CommandObject,
    bot: Bot,
    db: Storage,
    admins: AdminCheck,
    t: Texts,
) -> None:
    """The chat's (or a channel's) queries, a page at a time, each with its buttons."""
    reference, _ = split_target((command.args or "").strip())
    target = await target_of(message, reference, bot, admins, t)
    if target is None:
        return
    shown = render_page(t, target, await db.subscriptions_of(target.chat_id), 0)
    await message.answer(shown.text, reply_markup=shown.keyboard)


def offered(message: Message, data: str) -> bool:
    """Whether the message carries a button with exactly this data: a press on anything
    else was forged (or made on a keyboard that has changed since)."""
    markup = message.reply_markup
    if markup is None:
        return False
    return any(button.callback_data == data for row in markup.inline_keyboard for button in row)


async def pressed_target(
    callback: CallbackQuery,
    message: Message,
    button: QueryButton,
    bot: Bot,
    db: Storage,
    admins: AdminCheck,
    t: Texts,
) -> Target | str:
    """Whose list the button is on, if the presser may change it; otherwise the toast."""
    user = callback.from_user
    if button.owner != 0:
        # A channel's list lives in a private chat of one of its administrators.
        channel = await db.get_subscriber(button.owner)
        if message.chat.type != "private" or channel is None or channel.kind != "channel":
            return t("list-toast-outdated")
        if not await admins.is_admin(bot, channel.chat_id, user.id):
            return t("list-toast-channel-admins-only")
        return Target(channel.chat_id, channel.name)
    if (
        message.chat.type != "private"
        and user.id != GROUP_ANONYMOUS_BOT  # only an anonymous administrator presses as it
        and not await admins.is_admin(bot, message.chat.id, user.id)
    ):
        return t("list-toast-admins-only")
    return Target(message.chat.id)


async def apply(
    action: Action, subscription: Subscription, db: Storage, matcher: Matcher, t: Texts
) -> str:
    """Do what a query's button says; returns the toast that confirms it."""
    if action is Action.REMOVE:
        await db.remove_subscription(subscription.id)
        await matcher.remove(subscription.id)
        return t("list-toast-removed")
    if action is Action.PAUSE:
        await db.update_subscription(subscription.id, paused=True)
        await matcher.remove(subscription.id)
        return t("list-toast-paused")
    if action is Action.RESUME:
        resumed = await db.update_subscription(subscription.id, paused=False)
        if resumed is not None:
            await matcher.add(resumed)
        return t("list-toast-resumed")
    mode = MODE_OF_ACTION[action]
    # Ingest reads a query's mode from storage when it records a match: no index change.
    await db.update_subscription(subscription.id, mode=mode)
    return t(f"list-toast-mode-{mode}")


async def show(message: Message, page: Page) -> None:
    """Edit the list in place; the same content again is no change, not an error."""
    try:
        await message.edit_text(page.text, reply_markup=page.keyboard)
    except TelegramBadRequest as exc:
        if "message is not modified" not in exc.message:
            log.info(
                "list %d in chat %d not updated: %s", message.message_id, message.chat.id, exc
            )


async def press(
    callback: CallbackQuery,
    button: QueryButton,
    bot: Bot,
    db: Storage,
    matcher: Matcher,
    admins: AdminCheck,
    t: Texts,
) -> str | None:
    """Handle a press on /list; returns the toast to show (None: none)."""
    message = callback.message
    if not isinstance(message, Message) or not offered(message, callback.data or ""):
        return t("list-toast-outdated")
    target = await pressed_target(callback, message, button, bot, db, admins, t)
    if isinstance(target, str):
        return target
    toast = None
    if button.action is not Action.PAGE:
        subscription = await db.get_subscription(button.id)
        if subscription is None or subscription.chat_id != target.chat_id:
            toast = t("list-toast-gone")  # removed meanwhile: the list is shown as it is now
        else:
            toast = await apply(button.action, subscription, db, matcher, t)
    page = render_page(t, target, await db.subscriptions_of(target.chat_id), button.page)
    if page.page != button.page and toast is None:
        toast = t("list-toast-changed")  # the page asked for is gone: its last one is shown
    await show(message, page)
    return toast


async def cb_list(
    callback: CallbackQuery,
    callback_data: QueryButton,
    bot: Bot,
    db: Storage,
    matcher: Matcher,
    admins: AdminCheck,
    t: Texts,
) -> None:
    toast = await press(callback, callback_data, bot, db, matcher, admins, t)
    await callback.answer(toast)


async def cb_malformed(callback: CallbackQuery, t: Texts) -> None:
    """A /list button whose data does not parse: forged, or from an older version."""
    await callback.answer(t("list-toast-outdated"))


def build_router() -> Router:
    router = Router(name="subscriptions")
    router.message.register(cmd_subscribe, Command("subscribe"))
    router.message.register(cmd_unsubscribe, Command("unsubscribe"))
    router.message.register(cmd_list, Command("list"))
    router.callback_query.register(cb_list, QueryButton.filter())
    router.callback_query.register(cb_malformed, F.data.func(is_query_button))
    return router
