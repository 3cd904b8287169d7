"""How a source is doing, in words an admin reads in `/sources` (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from bot.domain import SourceInfo

FAILING_AFTER = 3  # consecutive failures
SILENT_AFTER = timedelta(hours=24)  # while a source's rhythm is unknown (few posts yet)
# Once its rhythm is known, a source is "silent" after this many times its longest recent
# gap between posts, within sensible bounds: a channel posting every few minutes is
# flagged after hours of silence, a weekly newsletter only after weeks.
RHYTHM_FACTOR = 3
SILENT_AT_LEAST = timedelta(hours=6)
SILENT_AT_MOST = timedelta(days=30)
ERROR_SHOWN = 200  # characters of the last error a line shows


def ago(moment: datetime | None, now: datetime) -> str:
    """`5 min ago`, `3 h ago`, `2 days ago`, or `never`."""
    if moment is None:
        return "never"
    if now - moment < timedelta(minutes=1):
        return "just now"
    return f"{span(now - moment)} ago"


def at(moment: datetime, now: datetime, tz: tzinfo = UTC) -> str:
    """`10:42 UTC` today (in `tz`), `27 Nov 10:42 UTC` on another day."""
    local = moment.astimezone(tz)
    if local.date() == now.astimezone(tz).date():
        return local.strftime("%H:%M %Z")
    return local.strftime("%d %b %H:%M %Z")


def warning(info: SourceInfo, now: datetime) -> str | None:
    """Why an admin should look at this source, or None when it looks healthy.

    A stopped source (a refused token, a feed that is gone) is flagged at once: a retry
    will not fix it. Other failures are flagged from the `FAILING_AFTER`-th in a row.
    """
    if info.stopped_at is not None:
        return f"stopped: {_error(info)}"
    if info.failures >= FAILING_AFTER:
        return f"failing ({info.failures} times in a row): {_error(info)}"
    quiet_since = info.last_post_at or info.added_at
    if now - quiet_since > silent_after(info):
        usual = "" if info.usual_gap is None else f" (usually ≤ {span(info.usual_gap)} apart)"
        return f"silent: no new post since {ago(quiet_since, now)}{usual}"
    return None


def silent_after(info: SourceInfo) -> timedelta:
    """How long without a new post before a source counts as silent (by its own rhythm)."""
    if info.usual_gap is None:
        return SILENT_AFTER
    return min(SILENT_AT_MOST, max(SILENT_AT_LEAST, info.usual_gap * RHYTHM_FACTOR))


def span(length: timedelta) -> str:
    """`40 min`, `5 h`, `3 days`."""
    seconds = int(length.total_seconds())
    if seconds < 3600:
        return f"{max(1, seconds // 60)} min"
    if seconds < 172_800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} days"


def describe(info: SourceInfo, now: datetime, tz: tzinfo = UTC) -> str:
    """One line about a source (plain text): its name and spec, its posts, how reading goes.

    Times of day are shown in `tz`.
    """
    name = f"{info.title} ({info.spec})" if info.title else info.spec
    line = f"{name} — last post {ago(info.last_post_at, now)}, {info.posts_24h} in 24 h"
    state = reading(info, now, tz)
    return f"{line}; {state}" if state else line


def reading(info: SourceInfo, now: datetime, tz: tzinfo = UTC) -> str | None:
    """How the source's reads go, by its last outcome; None before its first read.

    `stopped since 10:42 UTC: …; last read OK 2 h ago`, `failing since 10:42 UTC: …,
    3 times in a row; last read OK 2 h ago`, or `read OK 5 min ago`.
    """
    last_ok = (
        "never read OK" if info.last_ok_at is None else f"last read OK {ago(info.last_ok_at, now)}"
    )
    if info.stopped_at is not None:
        return f"stopped since {at(info.stopped_at, now, tz)}: {_error(info)}; {last_ok}"
    if info.failures > 0:
        since = info.failing_since or info.last_error_at
        when = f" since {at(since, now, tz)}" if since is not None else ""
        times = "once" if info.failures == 1 else f"{info.failures} times in a row"
        return f"failing{when}: {_error(info)}, {times}; {last_ok}"
    if info.last_ok_at is not None:
        return f"read OK {ago(info.last_ok_at, now)}"
    return None


def _error(info: SourceInfo) -> str:
    return (info.last_error or "unknown error")[:ERROR_SHOWN]
