"""aiogram routers, one module per command group; thin: parse, call, reply."""

from aiogram import Router

from handlers import fallback, search, sources, start, subscriptions


def build_router() -> Router:
    """All command routers; the fallback for unknown input comes last."""
    root = Router(name="dozor")
    root.include_routers(
        start.build_router(),
        subscriptions.build_router(),
        search.build_router(),
        sources.build_router(),
        fallback.build_router(),
    )
    return root


__all__ = ["build_router"]
