"""How a source is doing, in words an admin reads in `/sources` (pure functions)."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain import SourceInfo

FAILING_AFTER = 3  # consecutive failures
SILENT_AFTER = timedelta(hours=24)  # while a source's rhythm is unknown (few posts yet)
# Once its rhythm is known, a source is "silent" after this many times its longest recent
# gap between posts, within sensible bounds: a channel posting every few minutes is
# flagged after hours of silence, a weekly newsletter only after weeks.
RHYTHM_FACTOR = 3
SILENT_AT_LEAST = timedelta(hours=6)
SILENT_AT_MOST = timedelta(days=30)


def ago(moment: datetime | None, now: datetime) -> str:
    """`5 min ago`, `3 h ago`, `2 days ago`, or `never`."""
    if moment is None:
        return "never"
    if now - moment < timedelta(minutes=1):
        return "just now"
    return f"{span(now - moment)} ago"


def warning(info: SourceInfo, now: datetime) -> str | None:
    """Why an admin should look at this source, or None when it looks healthy."""
    if info.failures >= FAILING_AFTER:
        return f"failing ({info.failures} times in a row): {info.last_error or 'unknown error'}"
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


def describe(info: SourceInfo, now: datetime) -> str:
    """One line about a source (plain text)."""
    line = f"{info.spec} — last post {ago(info.last_post_at, now)}, {info.posts_24h} in 24 h"
    if info.last_ok_at is not None:
        line += f"; read OK {ago(info.last_ok_at, now)}"
    if info.last_error and info.failures:
        line += f"; last error {ago(info.last_error_at, now)}: {info.last_error[:200]}"
    return line
