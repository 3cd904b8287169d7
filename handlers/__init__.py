"""aiogram routers, one module per command group; thin: parse, call, reply."""

from aiogram import Router

from bot.i18n import Catalog
from handlers import (
    export,
    fallback,
    groups,
    presets,
    search,
    settings,
    sources,
    start,
    stats,
    subscriptions,
)
from handlers.access import install_access
from handlers.groups import install_group_gate
from handlers.language import install_language
from handlers.throttle import InputThrottle, install_throttle


def build_router(catalog: Catalog, throttle: InputThrottle | None = None) -> Router:
    """All command routers behind the per-chat input throttle and the access rule, answering
    in each chat's language, with a group's changes kept to its administrators; the
    fallback for anything else comes last."""
    root = Router(name="dozor")
    # Outer middlewares of the root, in this order, see every message and button press
    # before any filter: a flooding chat's excess costs nothing but a counter, and in a
    # private deployment (ALLOWED_USERS) a stranger's update nothing but a look-up.
    install_throttle(root, throttle)
    install_access(root)
    install_language(root, catalog)
    start_router = start.build_router()
    search_router = search.build_router()
    fallback_router = fallback.build_router()
    # In groups, buttons outside these read-only routers need an administrator, and so do
    # the commands that change a group (groups.MANAGING_COMMANDS), whichever router has them.
    install_group_gate(root, open_routers=(start_router, search_router, fallback_router))
    root.include_routers(
        groups.build_router(),
        start_router,
        subscriptions.build_router(),
        search_router,
        settings.build_router(),
        presets.build_router(),
        sources.build_router(),
        stats.build_router(),
        export.build_router(),
        fallback_router,
    )
    return root


__all__ = ["build_router"]
