"""The command menu Telegram shows next to the input field, per language."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand

from bot.i18n import ENGLISH, Catalog, language_for

log = logging.getLogger(__name__)

# Commands in the menu, in its order; each has a `menu-<command>` text in every catalogue.
MENU = (
    "subscribe",
    "list",
    "search",
    "export",
    "stats",
    "presets",
    "settings",
    "unsubscribe",
    "help",
)
# Telegram language codes given their own menu (others see the default, English one).
MENU_LANGUAGES = ("ru", "uk", "be")


def command_menu(catalog: Catalog, language: str) -> list[BotCommand]:
    t = catalog.texts(language)
    return [BotCommand(command=name, description=t(f"menu-{name}")) for name in MENU]


async def set_command_menus(bot: Bot, catalog: Catalog) -> None:
    """The default menu in English, and one for each language we answer in another language;
    a failure is logged (the bot works without a menu)."""
    try:
        await bot.set_my_commands(command_menu(catalog, ENGLISH))
        for code in MENU_LANGUAGES:
            menu = command_menu(catalog, language_for(code))
            await bot.set_my_commands(menu, language_code=code)
    except TelegramAPIError as exc:
        log.warning("could not set the command menu: %s", exc)
