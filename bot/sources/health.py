"""How a source is doing, in words an admin reads in `/sources` (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from bot.domain import SourceInfo
from bot.i18n import Texts

FAILING_AFTER = 3  # consecutive failures
SILENT_AFTER = timedelta(hours=24)  # while a source's rhythm is unknown (few posts yet)
# Once its rhythm is known, a source is "silent" after this many times its longest recent
# gap between posts, within sensible bounds: a channel posting every few minutes is
# flagged after hours of silence, a weekly newsletter only after weeks.
RHYTHM_FACTOR = 3
SILENT_AT_LEAST = timedelta(hours=6)
SILENT_AT_MOST = timedelta(days=30)
ERROR_SHOWN = 200  # characters of the last error a line shows


def ago(t: Texts, moment: datetime | None, now: datetime) -> str:
    """`5 min ago`, `3 h ago`, `2 days ago`, or `never`."""
    if moment is None:
        return t("health-never")
    if now - moment < timedelta(minutes=1):
        return t("health-just-now")
    return t("health-ago", span=span(t, now - moment))


def at(t: Texts, moment: datetime, now: datetime, tz: tzinfo = UTC) -> str:
    """`10:42 UTC` today (in `tz`), `27 Nov 10:42 UTC` on another day."""
    local = moment.astimezone(tz)
    zone = local.strftime("%Z")
    if local.date() == now.astimezone(tz).date():
        return f"{local.strftime('%H:%M')} {zone}"
    return f"{t.date(local, 'd MMM HH:mm')} {zone}"


def warning(t: Texts, info: SourceInfo, now: datetime) -> str | None:
    """Why an admin should look at this source, or None when it looks healthy.

    A stopped source (a refused token, a feed that is gone) is flagged at once: a retry
    will not fix it. Other failures are flagged from the `FAILING_AFTER`-th in a row.
    """
    if info.stopped_at is not None:
        return t("health-warning-stopped", error=_error(t, info))
    if info.failures >= FAILING_AFTER:
        return t("health-warning-failing", count=info.failures, error=_error(t, info))
    quiet_since = info.last_post_at or info.added_at
    if now - quiet_since > silent_after(info):
        since = ago(t, quiet_since, now)
        if info.usual_gap is None:
            return t("health-warning-silent", since=since)
        return t("health-warning-silent-usually", since=since, gap=span(t, info.usual_gap))
    return None


def silent_after(info: SourceInfo) -> timedelta:
    """How long without a new post before a source counts as silent (by its own rhythm)."""
    if info.usual_gap is None:
        return SILENT_AFTER
    return min(SILENT_AT_MOST, max(SILENT_AT_LEAST, info.usual_gap * RHYTHM_FACTOR))


def span(t: Texts, length: timedelta) -> str:
    """`40 min`, `5 h`, `3 days`."""
    seconds = int(length.total_seconds())
    if seconds < 3600:
        return t("health-minutes", count=max(1, seconds // 60))
    if seconds < 172_800:
        return t("health-hours", count=seconds // 3600)
    return t("health-days", count=seconds // 86_400)


def describe(t: Texts, info: SourceInfo, now: datetime, tz: tzinfo = UTC) -> str:
    """One line about a source (plain text): its name and spec, its posts, how reading goes.

    Times of day are shown in `tz`.
    """
    name = f"{info.title} ({info.spec})" if info.title else info.spec
    line = t("health-line", name=name, last=ago(t, info.last_post_at, now), count=info.posts_24h)
    state = reading(t, info, now, tz)
    return f"{line}; {state}" if state else line


def reading(t: Texts, info: SourceInfo, now: datetime, tz: tzinfo = UTC) -> str | None:
    """How the source's reads go, by its last outcome; None before its first read.

    `stopped since 10:42 UTC: …; last read OK 2 h ago`, `failing since 10:42 UTC: …,
    3 times in a row; last read OK 2 h ago`, or `read OK 5 min ago`.
    """
    if info.last_ok_at is None:
        last_ok = t("health-never-ok")
    else:
        last_ok = t("health-last-ok", when=ago(t, info.last_ok_at, now))
    error = _error(t, info)
    if info.stopped_at is not None:
        when = at(t, info.stopped_at, now, tz)
        return t("health-stopped-since", when=when, error=error, last_ok=last_ok)
    if info.failures > 0:
        since = info.failing_since or info.last_error_at
        if since is None:
            return t("health-failing", error=error, count=info.failures, last_ok=last_ok)
        when = at(t, since, now, tz)
        return t(
            "health-failing-since", when=when, error=error, count=info.failures, last_ok=last_ok
        )
    if info.last_ok_at is not None:
        return t("health-read-ok", when=ago(t, info.last_ok_at, now))
    return None


def _error(t: Texts, info: SourceInfo) -> str:
    return (info.last_error or t("health-unknown-error"))[:ERROR_SHOWN]
