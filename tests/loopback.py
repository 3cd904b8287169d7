"""A stand-in web server on loopback: an aiohttp app on a free port of 127.0.0.1.

Subclasses add their routes in `routes()`; `stall()` holds a request until the server
closes, which is how a test plays a server that never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

from aiohttp import web


class LoopbackServer:
    def __init__(self) -> None:
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def stall(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), 30)

    async def start(self, port: int = 0) -> str:
        """Bind ``127.0.0.1`` on `port` (a free one by default) and return the base URL."""
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        # Made here, not only in __init__, so it belongs to the loop that runs the server.
        self._closing = asyncio.Event()
        app = web.Application()
        self.routes(app)
        # shutdown_timeout bounds how long cleanup() waits for in-flight handlers; waits
        # inside handlers are woken by _closing, so this is only a safety net.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving; requests held by `stall()` are released first."""
        runner = self._runner
        if runner is None:
            return
        self._runner = None
        self._closing.set()
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
