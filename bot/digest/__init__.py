"""Daily digests: when each chat is due, what goes in, and how it is written.

When: each chat's next digest time (UTC) is stored with it, so the periodic job is one range
read of an index. A due time not yet worked out (a new chat, changed settings, a restart of
the service, whose DIGEST_TIME or TIMEZONE may have changed) is worked out from the time of
the chat's previous digest: a digest missed while Dozor was down is sent once, late, at the
next start, and none is sent twice. A chat that turned its digest off gets none, but its mark
still moves at each slot: turned on again, its first digest covers a day, not the whole time
it was off. Quiet hours and mutes do not hold digests (the chat chose their time itself).

What: everything that matched since the previous digest (queries in instant-alerts-only mode
left out), grouped by query: the count, then the most relevant stories, each one post with
its matched words in bold and "also in …" for the other posts telling the same story
(`bot.folding`). Long digests are split between items, each message headed with the period's
dates and its number. With the digest comes the chat's 14-day trend chart (`bot.chart`),
drawn when it is sent. Nothing matched: no message, unless the chat asked for quiet days too.

Preparing thousands of digests reads in batches (`job.py`: four reads per 500 chats, the next
batch read while this one is written), works each post out once for every chat (`cache.py`)
and gives the event loop back every 10 ms. `schedule.py` says when, `render.py` what the
messages say, `trend.py` what the chart counts.
"""

from bot.digest.cache import CompiledQueries, DigestCache
from bot.digest.job import queue_digests, young_collections_only
from bot.digest.render import (
    StoryItem,
    digest_blocks,
    digest_heading,
    digest_period,
    quiet_digest,
    render_digest,
    split_messages,
    stories,
)
from bot.digest.schedule import digest_due, digest_time, latest_slot, next_slot
from bot.digest.trend import (
    chart_for,
    chart_payload,
    chart_shift,
    chart_window,
    subscriber_chart,
    zone_shift,
)

__all__ = [
    "CompiledQueries",
    "DigestCache",
    "StoryItem",
    "chart_for",
    "chart_payload",
    "chart_shift",
    "chart_window",
    "digest_blocks",
    "digest_due",
    "digest_heading",
    "digest_period",
    "digest_time",
    "latest_slot",
    "next_slot",
    "queue_digests",
    "quiet_digest",
    "render_digest",
    "split_messages",
    "stories",
    "subscriber_chart",
    "young_collections_only",
    "zone_shift",
]
