"""Which language each update is answered in: the chat's choice (/lang), else the Telegram
language_code of the person writing (`ru`, `uk`, `be` → Russian, anything else → English).

An outer middleware puts the chat's `Texts` (as `t`) and its `Subscriber` row (as
`subscriber`, None for a chat never seen) into every handler's data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Router
from aiogram.types import CallbackQuery, Chat, Message, TelegramObject, User

from bot.domain import Subscriber
from bot.i18n import Catalog, Texts, language_for
from bot.storage import Storage


def chat_language(subscriber: Subscriber | None, user: User | None) -> str:
    """The language to answer a chat in (see the module's docstring)."""
    if subscriber is not None and subscriber.language:
        return subscriber.language
    code = user.language_code if user is not None else None
    if subscriber is not None and (code is None or subscriber.kind != "private"):
        # A group speaks the language of whoever added the bot, not of each member.
        code = subscriber.tg_language or code
    return language_for(code)


def texts_for(catalog: Catalog, subscriber: Subscriber | None, user: User | None) -> Texts:
    return catalog.texts(chat_language(subscriber, user))


def event_place(event: TelegramObject) -> tuple[Chat | None, User | None]:
    """The chat an update happened in and who did it (None where it names none)."""
    if isinstance(event, Message):
        return event.chat, event.from_user
    if isinstance(event, CallbackQuery):
        message = event.message
        return (message.chat if message is not None else None), event.from_user
    chat = getattr(event, "chat", None)
    user = getattr(event, "from_user", None)
    return (
        chat if isinstance(chat, Chat) else None,
        user if isinstance(user, User) else None,
    )


class LanguageMiddleware(BaseMiddleware):
    """Puts `t` (the chat's texts) and `subscriber` into the handler data."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        chat, user = event_place(event)
        storage: Storage | None = data.get("db")
        subscriber = None
        if chat is not None and storage is not None:
            subscriber = await storage.get_subscriber(chat.id)
            code = user.language_code if user is not None else None
            if (
                subscriber is not None
                and subscriber.kind == "private"
                and code
                and code != subscriber.tg_language
            ):
                await storage.note_language(chat.id, code)
        data["subscriber"] = subscriber
        data["t"] = texts_for(self.catalog, subscriber, user)
        return await handler(event, data)


def install_language(router: Router, catalog: Catalog) -> None:
    """Answer every message, button press and membership change in the chat's language."""
    middleware = LanguageMiddleware(catalog)
    router.message.outer_middleware(middleware)
    router.callback_query.outer_middleware(middleware)
    router.my_chat_member.outer_middleware(middleware)
