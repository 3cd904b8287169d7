"""One bounded HTTP GET for every polled source: a timeout, a size limit, clear errors.

The body is counted while it is read, after decompression, so a missing or false
Content-Length (or a gzip bomb) cannot fill memory; any status is returned to the caller,
which knows what a 304 or a 429 means for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDictProxy

READ_CHUNK = 1 << 16


class FetchError(Exception):
    """Nothing usable came back: no answer in time, a broken connection, a body too large."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """An HTTP answer, read whole (within the size limit)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    charset: str | None = None

    def text(self) -> str:
        """The body decoded with the declared charset (UTF-8 when unknown), never failing."""
        try:
            return self.body.decode(self.charset or "utf-8", "replace")
        except LookupError:  # an unknown charset in the Content-Type header
            return self.body.decode("utf-8", "replace")


def host_of(url: str) -> str:
    """The lower-case host of a URL (`www.` kept): what per-host limits are counted by."""
    return (urlsplit(url).hostname or "").lower()


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    time_limit: float,
    max_bytes: int,
    shown: str | None = None,
) -> Fetched:
    """GET `url`; FetchError (naming `shown`, or the URL) for a timeout, a network error or a
    body over `max_bytes`. Redirects are followed (at most 5)."""
    shown = shown or url
    too_big = f"GET {shown}: the answer is larger than {max_bytes} bytes"
    try:
        async with session.get(
            url,
            params=params,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=time_limit),
            max_redirects=5,
        ) as response:
            if (response.content_length or 0) > max_bytes:
                raise FetchError(too_big)
            body = bytearray()
            async for chunk in response.content.iter_chunked(READ_CHUNK):
                body += chunk
                if len(body) > max_bytes:
                    raise FetchError(too_big)
            return Fetched(
                status=response.status,
                headers=response.headers,
                body=bytes(body),
                charset=response.charset,
            )
    except TimeoutError:
        raise FetchError(f"GET {shown}: no answer within {time_limit:g} s") from None
    except aiohttp.ClientError as exc:
        raise FetchError(f"GET {shown}: {type(exc).__name__}: {exc}") from None
