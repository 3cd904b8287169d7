"""The last resort: a handler that failed still answers, and the failure is logged with its
update id, so a user never meets silence and an operator can find what happened."""

from __future__ import annotations

import contextlib
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent, User

from bot.i18n import Catalog, Texts
from bot.storage import Storage
from handlers.language import texts_for

log = logging.getLogger(__name__)


async def on_error(
    event: ErrorEvent, bot: Bot, catalog: Catalog, db: Storage | None = None
) -> bool:
    """Log the failure with the update id and tell the chat it came from, briefly."""
    update = event.update
    log.error(
        "update %d failed: %s: %s",
        update.update_id,
        type(event.exception).__name__,
        event.exception,
        exc_info=event.exception,
    )
    chat_id = _chat_of(event)
    if chat_id is not None:
        try:
            t = await _texts(event, catalog, db, chat_id)
            await bot.send_message(chat_id, t("handler-failed", update=str(update.update_id)))
        except (TelegramAPIError, OSError) as exc:
            log.warning(
                "could not tell chat %d about update %d: %s", chat_id, update.update_id, exc
            )
    if update.callback_query is not None:
        with contextlib.suppress(TelegramAPIError, OSError):
            await update.callback_query.answer()  # stop the button's spinner
    return True


async def _texts(event: ErrorEvent, catalog: Catalog, db: Storage | None, chat_id: int) -> Texts:
    """The chat's texts, as its handler would have had them (its `t` is out of reach here)."""
    update = event.update
    source = update.message or update.edited_message or update.callback_query
    user = getattr(source, "from_user", None)
    subscriber = None
    if db is not None:
        # The failure may be the database's own: then the person's Telegram language will do.
        with contextlib.suppress(Exception):
            subscriber = await db.get_subscriber(chat_id)
    return texts_for(catalog, subscriber, user if isinstance(user, User) else None)


def _chat_of(event: ErrorEvent) -> int | None:
    update = event.update
    if update.message is not None:
        return update.message.chat.id
    if update.edited_message is not None:
        return update.edited_message.chat.id
    callback = update.callback_query
    if callback is not None and callback.message is not None:
        return callback.message.chat.id
    return None
