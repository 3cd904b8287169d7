"""aiogram routers, one module per command group; thin: parse, call, reply."""

from aiogram import Router

from bot.i18n import Catalog
from handlers import fallback, search, sources, start, subscriptions
from handlers.language import install_language
from handlers.throttle import install_throttle


def build_router(catalog: Catalog) -> Router:
    """All command routers behind the per-chat input throttle, answering in each chat's
    language; the fallback for unknown input comes last."""
    root = Router(name="dozor")
    # Outer middleware of the root: every message and button press passes it before any filter,
    # so a flooding chat's excess costs nothing but a counter.
    install_throttle(root)
    install_language(root, catalog)
    root.include_routers(
        start.build_router(),
        subscriptions.build_router(),
        search.build_router(),
        sources.build_router(),
        fallback.build_router(),
    )
    return root


__all__ = ["build_router"]
