"""Anything no other handler took, answered helpfully instead of silently.

* Plain text in a private chat: if it parses as a query, buttons offer to subscribe to it or
  to search for it; if not, the reason.
* A forwarded channel post: Dozor's administrators are offered to watch the channel as a
  source, everyone to search for similar posts (a query of a few distinctive words).
* An unknown command: the closest known one (in a group only when addressed to this bot).
* A button nobody handles any more: a short toast.

A button here does what typing its command would: the press is run through the dispatcher
as the presser's `/subscribe QUERY`, `/search QUERY` or `/addsource @channel`, so every rule
of those commands (limits, admin checks, replies) applies unchanged. The query is not kept
anywhere: the offer shows it as its only `<code>` text, and a press reads it back from there.
"""

from __future__ import annotations

import difflib
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.filters import Command, Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    CallbackQuery,
    Message,
    MessageOriginChannel,
    Update,
)
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.config import Settings
from bot.delivery.render import shorten
from bot.i18n import Texts
from bot.matching import QueryError, parse_query
from bot.sources.links import TELEGRAM_USERNAME
from handlers.access import is_dozor_admin
from handlers.texts import code, escaped, query_error

ECHO_CHARS = 600  # user text repeated in a reply at most
BUTTON_TEXT_CHARS = 24  # the text quoted on a button (Telegram cuts long buttons anyway)
SIMILAR_WORDS = 3  # words of a forwarded post that make the "similar posts" query
# Commands of Dozor's administrators: not suggested to anyone else.
ADMIN_COMMANDS = frozenset({"sources", "addsource", "removesource", "stats"})
SUGGEST_CUTOFF = 0.6  # difflib similarity below which no command is suggested
_COMMAND = re.compile(r"/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?=\s|$)")


class OfferAction(StrEnum):
    SUBSCRIBE = "s"
    SEARCH = "q"
    WATCH = "w"  # watch a forwarded post's channel as a source
    SIMILAR = "m"  # search for posts like a forwarded one


class Offer(CallbackData, prefix="of"):
    """A press on an offer; `channel` is the username to watch (WATCH only)."""

    action: OfferAction
    channel: str | None = None


# --- plain text -----------------------------------------------------------------------


async def on_text(message: Message, t: Texts) -> None:
    """Offer to subscribe to the text or to search for it (or say why it is no query)."""
    text = message.text or ""
    try:
        query = parse_query(text)
    except QueryError as exc:
        error = query_error(t, exc)
        await message.answer(t("offer-invalid", error=error, example=code(t("example-query"))))
        return
    quoted = shorten(query.text, BUTTON_TEXT_CHARS)
    builder = InlineKeyboardBuilder()
    if not query.text.startswith(("@", "-100")):
        # `/subscribe @name …` names a channel to configure, not a query: no such offer.
        builder.button(
            text=t("offer-button-subscribe", text=quoted),
            callback_data=Offer(action=OfferAction.SUBSCRIBE).pack(),
        )
    builder.button(
        text=t("offer-button-search", text=quoted),
        callback_data=Offer(action=OfferAction.SEARCH).pack(),
    )
    builder.adjust(1)
    await message.answer(t("offer-text", query=code(query.text)), reply_markup=builder.as_markup())


# --- forwarded channel posts ----------------------------------------------------------

# Words that say nothing about a post's topic (a few hundred would not do much better: the
# words chosen are also the post's rarest-looking ones).
_STOPWORDS = frozenset(
    """
    это этот эта эти того тому том также такой такие который которая которые которых когда
    тогда чтобы если было были будет будут может могут после перед через между более менее
    очень всех всего всем свою свой своих своей году года сегодня вчера завтра теперь только
    уже ещё еще где как так что чем при для или над под без его её их они она оно мы вы
    this that these those there their them they have has had will would could should about
    after before which while where when what with from into over under more most also than
    then just only been being were said says today yesterday according
    россия россии россию украина украины украину сша минобороны russia russian ukraine
    """.split()
)
_WORD = re.compile(r"[^\W_](?:[\w-]*[^\W_])?")


def _weight(word: str, sentence_start: bool) -> float:
    """How telling a word is: designations (9М729, Ту-95МС) and acronyms most, then names
    (capitalised inside a sentence), then long words."""
    score = min(len(word), 12) / 12
    if any(c.isdigit() for c in word) and any(c.isalpha() for c in word):
        score += 3
    elif word.isupper() and len(word) >= 2:
        score += 2.5
    elif word[0].isupper() and not sentence_start:
        score += 2
    return score


def similar_query(text: str, words: int = SIMILAR_WORDS) -> str | None:
    """A query of a post's few most distinctive words (all of them must occur), in the order
    they appear; None when the post has no such words."""
    text = re.sub(r"https?://\S+|[@#]\w+", " ", text[:4000])  # links, mentions, hashtags
    found: dict[str, tuple[float, int, str]] = {}
    for position, match in enumerate(_WORD.finditer(text)):
        word = match.group()
        if word.isdigit() or word.lower() in _STOPWORDS:
            continue
        if len(word) < 4 and not (word.isupper() and len(word) >= 2):
            continue
        before = text[: match.start()].rstrip()
        sentence_start = not before or before[-1] in ".!?\n:"
        weight = _weight(word, sentence_start)
        first = found.get(word.lower())
        if first is None:
            found[word.lower()] = (weight, position, word)
        elif weight > first[0]:  # a name seen first at a sentence's start, say
            found[word.lower()] = (weight, first[1], word)
    best = sorted(found.values(), key=lambda item: -item[0])[:words]
    chosen = [word for _, _, word in sorted(best, key=lambda item: item[1])]
    if not chosen:
        return None
    try:
        return parse_query(" ".join(chosen)).text
    except QueryError:
        return None


async def on_forwarded_post(message: Message, settings: Settings, t: Texts) -> None:
    """Offer an administrator to watch the post's channel; everyone, similar posts."""
    origin = message.forward_origin
    assert isinstance(origin, MessageOriginChannel)  # the filter said so
    channel = origin.chat
    username = channel.username if channel.username else None
    if username is not None and not TELEGRAM_USERNAME.fullmatch(username):
        username = None
    name = channel.title or (f"@{username}" if username else str(channel.id))
    lines = [t("offer-forward", channel=escaped(shorten(name, 200)))]
    builder = InlineKeyboardBuilder()
    if is_dozor_admin(message.from_user, settings):
        if username is not None:
            builder.button(
                text=t("offer-button-watch", channel=f"@{username}"),
                callback_data=Offer(action=OfferAction.WATCH, channel=username).pack(),
            )
        else:
            lines.append(t("offer-forward-private"))
    query = similar_query(message.text or message.caption or "")
    if query is not None:
        lines.append(t("offer-forward-similar", query=code(query)))
        builder.button(
            text=t("offer-button-similar"), callback_data=Offer(action=OfferAction.SIMILAR).pack()
        )
    if not builder.export():
        lines.append(t("offer-forward-nothing"))
        await message.answer("\n\n".join(lines))
        return
    await message.answer("\n\n".join(lines), reply_markup=builder.adjust(1).as_markup())


# --- pressing an offer ----------------------------------------------------------------


def quoted_query(message: Message) -> str | None:
    """The query an offer shows (its only `<code>` text)."""
    text = message.text or ""
    for entity in message.entities or ():
        if entity.type == "code":
            return entity.extract_from(text)
    return None


async def cb_offer(
    callback: CallbackQuery,
    callback_data: Offer,
    bot: Bot,
    dispatcher: Dispatcher,
    event_update: Update,
    t: Texts,
) -> None:
    """Do what the button says, as if the presser had typed the command."""
    message = callback.message
    command: str | None = None
    if isinstance(message, Message):
        if callback_data.action is OfferAction.WATCH:
            channel = callback_data.channel or ""
            if TELEGRAM_USERNAME.fullmatch(channel):
                command = f"/addsource @{channel}"
        else:
            query = quoted_query(message)
            if query:
                verb = "subscribe" if callback_data.action is OfferAction.SUBSCRIBE else "search"
                command = f"/{verb} {query}"
    if message is None or not isinstance(message, Message) or command is None:
        await callback.answer(t("button-outdated"))
        return
    await callback.answer()
    typed = Message(
        message_id=message.message_id,
        date=datetime.now(UTC),
        chat=message.chat,
        from_user=callback.from_user,
        text=command,
    )
    await dispatcher.feed_update(bot, Update(update_id=event_update.update_id, message=typed))


async def cb_outdated(callback: CallbackQuery, t: Texts) -> None:
    """A button no handler takes (an old version's, or forged): a toast, never an error."""
    await callback.answer(t("button-outdated"))


# --- unknown commands -----------------------------------------------------------------


class UnknownCommand(Filter):
    """A command this bot was meant to get: any in a private chat, in a group only one
    addressed to it (`/cmd@thisbot`: with privacy mode that is all a bot gets, and a bare
    `/cmd` may be another bot's); gives the handler `typed` (the command's name)."""

    async def __call__(self, message: Message, bot: Bot) -> bool | dict[str, Any]:
        match = _COMMAND.match(message.text or "")
        if match is None:
            return False
        if message.chat.type != "private":  # a private chat holds no other bot
            me = await bot.me()
            if (match.group(2) or "").lower() != (me.username or "").lower():
                return False
        return {"typed": match.group(1)}


def known_commands(router: Router) -> list[str]:
    """Every command a handler under `router` takes (as registered, so always current)."""
    names: list[str] = []
    for each in router.chain_tail:
        for handler in each.message.handlers:
            for flt in handler.filters or ():
                if isinstance(flt.callback, Command):
                    names += [c for c in flt.callback.commands if isinstance(c, str)]
    return list(dict.fromkeys(names))


async def cmd_unknown(
    message: Message,
    typed: str,
    bot: Bot,
    dispatcher: Dispatcher,
    settings: Settings,
    t: Texts,
) -> None:
    """I don't know /subscrbe — did you mean /subscribe?"""
    known = known_commands(dispatcher)
    if not is_dozor_admin(message.from_user, settings):
        known = [name for name in known if name not in ADMIN_COMMANDS]
    close = difflib.get_close_matches(typed.lower(), known, n=1, cutoff=SUGGEST_CUTOFF)
    if not close:
        await message.answer(t("unknown-command", command=code(f"/{typed}")))
        return
    suggestion = f"/{close[0]}"
    if message.chat.type != "private":
        me = await bot.me()
        suggestion += f"@{me.username}"
    await message.answer(
        t("unknown-command-suggest", command=code(f"/{typed}"), suggestion=suggestion)
    )


async def on_other(message: Message, t: Texts) -> None:
    await message.answer(t("commands-only"))


def build_router() -> Router:
    router = Router(name="fallback")
    private = F.chat.type == "private"
    router.message.register(on_forwarded_post, private, F.forward_origin.type == "channel")
    router.message.register(cmd_unknown, F.text.startswith("/"), UnknownCommand())
    # Only private chats from here: in groups, chatter is none of our business.
    router.message.register(on_text, private, F.text)
    router.message.register(on_other, private)
    router.callback_query.register(cb_offer, Offer.filter())
    router.callback_query.register(cb_outdated)
    return router
