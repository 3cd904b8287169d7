"""`x:@user` — an X account's posts, read through X API v2 and polled with `since_id`.

The account is looked up once (`/2/users/by/username/:name`) and its id and display name kept
in the durable cursor (`{"user_id": …, "username": …, "name": …, "since_id": …}`), so a restart
never repeats the lookup.
Each poll asks `/2/users/:id/tweets` for posts newer than `since_id`, pages back with
`pagination_token` (X answers newest first), and only then delivers the posts oldest first, each
with its own id as the cursor: a crash mid-way repeats nothing and skips nothing, and a poll that
fails mid-way delivers nothing, so the next one re-reads from the same `since_id`.

Reads are billed per post and rate-limited per endpoint and token, so one `XApi` is shared by
every X source: it remembers each endpoint's remaining budget and refuses to spend a request the
server would answer with 429. A refused token is loud (`XAuthError`), never a silent empty poll.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bot.domain import Post, SourceSpec, clean_text, clean_title
from bot.sources.base import Feed, RetryLater, SourceStopped
from bot.sources.http import Fetched, fetch, host_of
from bot.sources.polling import poll_forever

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 5 * 1024 * 1024  # a page of 100 posts is ~100 KB
FETCH_TIMEOUT = 20.0
# X keeps only an account's latest 3,200 posts reachable: 32 pages of 100.
MAX_PAGES_PER_POLL = 32
# A first run reads one small page: every post read is billed, and the account's older posts
# would be stored without alerts anyway (the feed's one first-read rule, see `SourceFeed`).
FIRST_RUN_RESULTS = 20
# X sends no Retry-After; without a reset header, wait out a whole 15-minute window.
DEFAULT_RATE_LIMIT_WAIT = 15 * 60.0
# A 429 whose reset already passed by our clock: the clocks disagree, so wait a little.
SKEWED_RESET_WAIT = 60.0

LOOKUP = "users/by/username"
TIMELINE = "users/tweets"
# `attachments` is asked for too: it counts the photos and videos of a post.
TWEET_FIELDS = (
    "created_at,referenced_tweets,entities,note_tweet,conversation_id,author_id,attachments"
)

X_USERNAME = re.compile(r"[A-Za-z0-9_]{1,15}")
_DIGITS = re.compile(r"[0-9]{1,20}")
_RT_PREFIX = re.compile(r"RT @([A-Za-z0-9_]{1,15}): ")
_MEDIA_HOSTS = ("pic.x.com/", "pic.twitter.com/")
# Every limit X reports; a 429 may come from the 24-hour caps, not the 15-minute window.
_LIMIT_HEADERS = (
    ("x-rate-limit-remaining", "x-rate-limit-reset"),
    ("x-app-limit-24hour-remaining", "x-app-limit-24hour-reset"),
    ("x-user-limit-24hour-remaining", "x-user-limit-24hour-reset"),
)


class XApiError(Exception):
    """X answered something unusable (5xx, an unexpected status, a body that is not JSON)."""


class XAuthError(SourceStopped):
    """X refused the bearer token (401), the app's access (403) or has no credits left (402):
    a retry will not fix it soon."""


class XAccountGone(SourceStopped):
    """The account does not exist, is suspended or cannot be read with this token."""


@dataclass(frozen=True, slots=True)
class XOptions:
    """What an X source reads besides the account's own posts and quotes."""

    include_replies: bool = False
    include_reposts: bool = False
    max_results: int = 100  # posts per page (X allows 5–100)

    def __post_init__(self) -> None:
        if not 5 <= self.max_results <= 100:
            raise ValueError(f"max_results must be 5–100 (X API limits), got {self.max_results}")

    @property
    def exclude(self) -> str | None:
        """The `exclude` parameter: what X should leave out of the timeline."""
        left_out = [
            name
            for name, included in (
                ("replies", self.include_replies),
                ("retweets", self.include_reposts),
            )
            if not included
        ]
        return ",".join(left_out) or None


@dataclass(slots=True)
class _Limit:
    remaining: int
    reset: float  # epoch seconds


class XApi:
    """X API v2 with one bearer token; shared by every `x:` source (one rate-limit budget)."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://api.x.com",
        timeout: float = FETCH_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not token.strip():
            raise ValueError("the X API token is empty: set X_BEARER_TOKEN")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._clock = clock
        # The token lives only in this header: no message, log line or repr shows it.
        self._headers = {"Authorization": f"Bearer {token.strip()}", "Accept": "application/json"}
        self._limits: dict[str, _Limit] = {}

    def __repr__(self) -> str:
        return f"XApi({self.base_url!r})"

    @property
    def host(self) -> str:
        return host_of(self.base_url)

    async def get(
        self,
        session: aiohttp.ClientSession,
        path: str,
        params: Mapping[str, str],
        *,
        endpoint: str,
    ) -> dict[str, Any]:
        """GET `path` and return the JSON object; `endpoint` names its rate-limit budget.

        RetryLater while that budget is spent (without asking X), XAuthError for 401/403,
        XApiError for any other failure status or a body that is not a JSON object, FetchError
        for a timeout, a network error or an answer over 5 MiB.
        """
        now = self._clock()
        limit = self._limits.get(endpoint)
        if limit is not None and limit.remaining <= 0 and limit.reset > now:
            raise self._rate_limited(endpoint, limit.reset, now)

        url = self.base_url + path
        answer = await fetch(
            session,
            url,
            params=params,
            headers=self._headers,
            time_limit=self.timeout,
            max_bytes=MAX_BODY_BYTES,
            shown=url,
        )
        now = self._clock()
        limit = _limit_of(answer.headers)
        if answer.status == 429:
            # X sends no Retry-After: the wait is until the exhausted limit resets.
            reset = limit.reset if limit is not None else now + DEFAULT_RATE_LIMIT_WAIT
            if reset <= now:
                reset = now + SKEWED_RESET_WAIT
            self._limits[endpoint] = _Limit(0, reset)
            raise self._rate_limited(endpoint, reset, now)
        if limit is not None:
            self._limits[endpoint] = limit

        body = _json_object(answer.body)
        if answer.status == 401:
            raise XAuthError("X API refused the token (HTTP 401): check X_BEARER_TOKEN")
        if answer.status == 402:
            # Pay-per-use credits ran out: retrying every few minutes cannot fix it.
            raise XAuthError(f"X API credits are used up (HTTP 402){_problem(body)}")
        if answer.status == 403:
            raise XAuthError(f"X API refused access (HTTP 403){_problem(body)}")
        if answer.status != 200:
            raise XApiError(f"X API {endpoint}: HTTP {answer.status}{_problem(body)}")
        if body is None:
            raise XApiError(f"X API {endpoint}: the answer is not a JSON object: {_start(answer)}")
        return body

    @staticmethod
    def _rate_limited(endpoint: str, reset: float, now: float) -> RetryLater:
        at = datetime.fromtimestamp(reset, UTC).strftime("%H:%M")
        return RetryLater(
            f"X API rate limit for {endpoint} reached; resets at {at} UTC", reset - now
        )


def _limit_of(headers: Mapping[str, str]) -> _Limit | None:
    """The tightest limit an answer reports: an exhausted one (the 15-minute window or a
    24-hour cap) with its reset, else the 15-minute window's budget; None without headers."""
    exhausted: list[int] = []
    for remaining_name, reset_name in _LIMIT_HEADERS:
        reset = _int_header(headers, reset_name)
        if reset is not None and _int_header(headers, remaining_name) == 0:
            exhausted.append(reset)
    if exhausted:
        return _Limit(0, float(max(exhausted)))
    remaining = _int_header(headers, "x-rate-limit-remaining")
    reset = _int_header(headers, "x-rate-limit-reset")
    if remaining is None or reset is None:
        return None
    return _Limit(remaining, float(reset))


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name, "").strip()
    return int(value) if value.isdigit() else None


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:  # UnicodeDecodeError included
        return None
    return value if isinstance(value, dict) else None


def _problem(body: Mapping[str, Any] | None) -> str:
    """`: title — detail (reason)` from an RFC 7807 problem body, or nothing."""
    if not body:
        return ""
    parts = [str(body[key]) for key in ("title", "detail") if isinstance(body.get(key), str)]
    text = " — ".join(" ".join(part.split()) for part in parts)[:300]
    reason = body.get("reason")
    if isinstance(reason, str) and reason:
        text = f"{text} ({reason[:60]})" if text else reason[:60]
    return f": {text}" if text else ""


def _start(answer: Fetched) -> str:
    shown = " ".join(answer.text()[:80].split())
    return (
        f"HTTP {answer.status}, starts with {shown!r}" if shown else f"HTTP {answer.status}, empty"
    )


def _error_details(errors: Any) -> list[str]:
    if not isinstance(errors, list):
        return []
    details = []
    for error in errors:
        if isinstance(error, dict):
            text = error.get("detail") or error.get("title") or error.get("message")
            if isinstance(text, str) and text:
                details.append(" ".join(text.split())[:200])
    return details


def _about_the_user(errors: Any) -> bool:
    """Whether X's `errors` say the account itself cannot be read (gone, suspended, protected)."""
    if not isinstance(errors, list):
        return False
    for error in errors:
        if not isinstance(error, dict):
            continue
        problem = str(error.get("type", ""))
        if error.get("resource_type") == "user" or problem.endswith(
            ("/resource-not-found", "/not-authorized-for-resource")
        ):
            return True
    return False


@dataclass(frozen=True, slots=True)
class XCursor:
    """The durable position of one X source: who the account is and the newest post read."""

    user_id: str
    username: str  # as X spells it (the canonical case)
    since_id: str | None = None
    name: str | None = None  # the display name ("" when X gave none; None: not looked up)

    def dump(self) -> str:
        return json.dumps(
            {
                "user_id": self.user_id,
                "username": self.username,
                "name": self.name,
                "since_id": self.since_id,
            }
        )

    @classmethod
    def load(cls, text: str | None) -> XCursor | None:
        """The cursor saved by `dump`, or None (logged) when it is missing or unreadable."""
        if not text:
            return None
        try:
            value = json.loads(text)
            user_id, username, since_id = value["user_id"], value["username"], value["since_id"]
            name = value.get("name")  # absent from cursors saved before names were kept
        except (ValueError, KeyError, TypeError):
            user_id = username = since_id = name = None
        if (
            isinstance(user_id, str)
            and _DIGITS.fullmatch(user_id)
            and isinstance(username, str)
            and X_USERNAME.fullmatch(username)
            and (since_id is None or (isinstance(since_id, str) and _DIGITS.fullmatch(since_id)))
        ):
            shown = (clean_title(name) or "") if isinstance(name, str) else None
            return cls(user_id, username, since_id, shown)
        log.warning("x cursor %r is unreadable; looking the account up afresh", text[:100])
        return None


def tweet_to_post(
    tweet: Mapping[str, Any], username: str, now: datetime, name: str | None = None
) -> Post:
    """A post from an X API v2 tweet object of the account `username` (display name `name`);
    ValueError when it has no usable id."""
    tweet_id = tweet.get("id")
    if not isinstance(tweet_id, str) or not _DIGITS.fullmatch(tweet_id):
        raise ValueError(f"a post without a usable id ({str(tweet_id)[:30]!r})")

    note = tweet.get("note_tweet")
    note = note if isinstance(note, dict) else {}
    # A long post ("note tweet") carries its whole text apart; `text` is then cut short.
    raw = note.get("text") if isinstance(note.get("text"), str) else tweet.get("text")
    text = _unescape(raw if isinstance(raw, str) else "")

    refs = tweet.get("referenced_tweets")
    references: dict[Any, str] = {}
    for ref in refs if isinstance(refs, list) else []:
        ref_id = ref.get("id") if isinstance(ref, dict) else None
        if isinstance(ref_id, str) and _DIGITS.fullmatch(ref_id):
            references[ref.get("type")] = ref_id
    quoted = references.get("quoted")
    reposted = references.get("retweeted")
    text = _expand_links(text, [note.get("entities"), tweet.get("entities")], quoted)

    forwarded_from: str | None = None
    if reposted:
        # A repost's text is "RT @name: " and the start of the original, cut short.
        match = _RT_PREFIX.match(text)
        if match is not None:
            name = match.group(1)
            forwarded_from = f"@{name} (https://x.com/{name}/status/{reposted})"
            text = text[match.end() :]
        else:
            forwarded_from = f"https://x.com/i/status/{reposted}"
    if quoted:
        text = f"{text}\n\nQuoting: https://x.com/i/status/{quoted}".lstrip()

    attachments = tweet.get("attachments")
    media = attachments.get("media_keys") if isinstance(attachments, dict) else None
    return Post(
        source="x",
        channel=username,
        post_id=tweet_id,
        date=_date(tweet.get("created_at")) or now,
        text=clean_text(text),
        url=f"https://x.com/{username}/status/{tweet_id}",
        forwarded_from=forwarded_from,
        media_count=len(media) if isinstance(media, list) else 0,
        channel_title=name or None,
    )


def _unescape(text: str) -> str:
    # X escapes exactly these three in post text; html.unescape would also decode entities
    # someone typed literally (and X then sent as "&amp;quot;").
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _expand_links(text: str, entity_sets: list[Any], quoted: str | None) -> str:
    """t.co links become the addresses they stand for; links to the post's own media and to
    the quoted post are dropped (the media is counted, the quote is named below the text)."""
    for entities in entity_sets:
        urls = entities.get("urls") if isinstance(entities, dict) else None
        for entity in urls if isinstance(urls, list) else []:
            if not isinstance(entity, dict) or not isinstance(entity.get("url"), str):
                continue
            short = entity["url"]
            expanded = entity.get("unwound_url") or entity.get("expanded_url") or short
            display = str(entity.get("display_url", ""))
            own_media = display.startswith(_MEDIA_HOSTS) or "media_key" in entity
            quote_link = quoted and re.search(rf"/status/{quoted}(?![0-9])", str(expanded))
            if own_media or quote_link:
                expanded = ""
            text = text.replace(short, str(expanded))
    return "\n".join(line.rstrip() for line in text.strip().split("\n"))


def _date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        date = datetime.fromisoformat(value)
    except ValueError:
        return None
    return date if date.tzinfo is not None else date.replace(tzinfo=UTC)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class XSource:
    """Polls one X account's timeline through a shared `XApi`; with `once=True`, a single time."""

    def __init__(
        self,
        username: str,
        api: XApi,
        *,
        interval: float = 300.0,
        options: XOptions | None = None,
        session_factory: Callable[[], aiohttp.ClientSession] = aiohttp.ClientSession,
        once: bool = False,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        name = username.strip().removeprefix("@")
        if not X_USERNAME.fullmatch(name):
            raise ValueError(f"{username!r} is not an X username (1–15 letters, digits or _)")
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.spec = SourceSpec("x", "@" + name)
        self.username = name
        self.api = api
        self.interval = interval
        self.options = options or XOptions()
        self.once = once
        self._session_factory = session_factory
        self._now = now

    @property
    def host(self) -> str:
        return self.api.host

    async def run(self, feed: Feed) -> None:
        await poll_forever(self, feed, once=self.once, session_factory=self._session_factory)

    async def poll(self, session: aiohttp.ClientSession, feed: Feed) -> int:
        """Read what the account posted since the cursor and deliver it oldest first."""
        cursor = XCursor.load(await feed.cursor())
        if cursor is None or cursor.name is None:
            found = await self._look_up(session)
            # A cursor saved before names were kept learns the name (once) and keeps its place.
            if cursor is not None and cursor.user_id == found.user_id:
                found = replace(cursor, name=found.name)
            cursor = found
            # Kept at once: the lookup costs a request and is never needed again.
            await feed.advance(cursor.dump())
        since = int(cursor.since_id) if cursor.since_id is not None else None
        tweets = await self._read_timeline(session, cursor)

        by_id: dict[int, Mapping[str, Any]] = {}
        for tweet in tweets:
            tweet_id = tweet.get("id")
            if not isinstance(tweet_id, str) or not _DIGITS.fullmatch(tweet_id):
                log.warning("x @%s: a post without a usable id skipped", cursor.username)
                continue
            if since is None or int(tweet_id) > since:
                by_id.setdefault(int(tweet_id), tweet)  # pages may overlap
        now = self._now()
        fresh = [
            tweet_to_post(by_id[tweet_id], cursor.username, now, cursor.name)
            for tweet_id in sorted(by_id)
        ]
        for post in fresh:
            await feed.deliver(post, replace(cursor, since_id=post.post_id).dump())

        if fresh:
            log.info(
                "x @%s: %d new post(s), up to %s", cursor.username, len(fresh), fresh[-1].post_id
            )
        else:
            log.debug("x @%s: no new posts", cursor.username)
        return len(fresh)

    async def _look_up(self, session: aiohttp.ClientSession) -> XCursor:
        answer = await self.api.get(
            session, f"/2/users/by/username/{self.username}", {}, endpoint=LOOKUP
        )
        data = answer.get("data")
        if data is None and answer.get("errors"):
            raise self._gone(answer.get("errors"))
        user_id = data.get("id") if isinstance(data, dict) else None
        username = data.get("username") if isinstance(data, dict) else None
        name = data.get("name") if isinstance(data, dict) else None
        if not (
            isinstance(user_id, str)
            and _DIGITS.fullmatch(user_id)
            and isinstance(username, str)
            and X_USERNAME.fullmatch(username)
        ):
            raise XApiError(f"X API {LOOKUP}: no user id and username for @{self.username}")
        log.info("x @%s: account id %s", username, user_id)
        return XCursor(
            user_id, username, name=clean_title(name if isinstance(name, str) else None) or ""
        )

    async def _read_timeline(
        self, session: aiohttp.ClientSession, cursor: XCursor
    ) -> list[Mapping[str, Any]]:
        """Every post after `since_id`, all pages (one small page on a first run)."""
        first_run = cursor.since_id is None
        params = {
            "max_results": str(
                min(FIRST_RUN_RESULTS, self.options.max_results)
                if first_run
                else self.options.max_results
            ),
            "tweet.fields": TWEET_FIELDS,
        }
        if self.options.exclude:
            params["exclude"] = self.options.exclude
        if cursor.since_id is not None:
            params["since_id"] = cursor.since_id

        tweets: list[Mapping[str, Any]] = []
        token: str | None = None
        for page in range(1, MAX_PAGES_PER_POLL + 1):
            answer = await self.api.get(
                session,
                f"/2/users/{cursor.user_id}/tweets",
                params if token is None else {**params, "pagination_token": token},
                endpoint=TIMELINE,
            )
            data, errors = answer.get("data"), answer.get("errors")
            if data is None:
                if errors and _about_the_user(errors):
                    raise self._gone(errors, cursor.username)
                if errors:
                    details = "; ".join(_error_details(errors)) or "errors without posts"
                    raise XApiError(f"X API {TIMELINE}: {details}")
            elif not isinstance(data, list):
                raise XApiError(f"X API {TIMELINE}: `data` is not a list of posts")
            else:
                tweets += [tweet for tweet in data if isinstance(tweet, dict)]
                if errors:
                    # Say, a quoted post that was deleted: the posts themselves are fine.
                    log.info(
                        "x @%s: X reported problems alongside the posts: %s",
                        cursor.username,
                        "; ".join(_error_details(errors))[:500],
                    )
            meta = answer.get("meta")
            next_token = meta.get("next_token") if isinstance(meta, dict) else None
            if first_run or not isinstance(next_token, str) or not next_token:
                return tweets
            if next_token == token:
                log.warning("x @%s: X repeated a page token; stopping", cursor.username)
                return tweets
            token = next_token
            if page == MAX_PAGES_PER_POLL:
                log.warning(
                    "x @%s: more than %d pages of new posts; older ones after %s are not read",
                    cursor.username,
                    MAX_PAGES_PER_POLL,
                    cursor.since_id,
                )
        return tweets

    def _gone(self, errors: Any, username: str | None = None) -> XAccountGone:
        details = "; ".join(_error_details(errors)) or "X gave no reason"
        return XAccountGone(f"X account @{username or self.username} cannot be read: {details}")
