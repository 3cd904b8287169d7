"""Reply texts shared by several handlers (HTML; every dynamic part is escaped by the caller)."""

import html


def code(text: str) -> str:
    """`text` escaped, as code (a query, a command, a source spec in a reply)."""
    return f"<code>{html.escape(text, quote=False)}</code>"


EXAMPLE_QUERY = 'Oreshnik OR "INF Treaty" -лещина'

HELP = (
    "<b>Dozor</b> watches Telegram channels and news feeds about arms control and military "
    "affairs and tells you the moment a post mentions what you track.\n\n"
    "<b>Commands</b>\n"
    "/subscribe <i>query</i> — alert me when a post matches\n"
    "/list — my saved queries, numbered\n"
    "/unsubscribe <i>query or number</i> — stop one\n"
    "/search <i>query</i> — the newest stored posts that match\n"
    "/help — this message\n\n"
    "<b>Queries</b>\n"
    "<code>Oreshnik</code> — any form, case or script: Орешника, Орєшник, Oreshnik's\n"
    '<code>"INF Treaty"</code> — these words together, in this order\n'
    "<code>Oreshnik Belarus</code> or <code>… AND …</code> — both\n"
    "<code>Oreshnik OR Burevestnik</code> (or <code>|</code>) — either\n"
    "<code>Орешник -лещина</code> (or <code>NOT</code>) — without\n"
    "<code>(Kalibr OR Kinzhal) Crimea</code> — grouping\n"
    "<code>морат*</code> — words starting so; <code>=Калибр</code> — exactly this form\n"
    "<code>/9[МM]7\\d\\d/</code> — a regular expression\n"
    "Names match across scripts (Kalibr finds Калибр, НАТО finds NATO); known names find "
    "their aliases (INF finds РСМД, 9M729 finds SSC-8). An acronym of 2–5 capitals "
    "(<code>ПРО</code>, <code>INF</code>) matches only words written in capitals, not "
    "«про» or «Inf.»; type it in lower case to match any case.\n\n"
    f"Example: <code>/subscribe {EXAMPLE_QUERY}</code>\n"
    "You also get a daily digest of everything that matched."
)

SEARCH_BUSY = "⏳ Your previous search is still running; I'll answer it before the next one."

HANDLER_FAILED = (
    "⚠️ Something went wrong while I handled that message, and it has been logged "
    "(update {update}). Please try again in a minute; /help lists what I can do."
)

# Sent once per flood episode by handlers/throttle.py; plain text (also a button's toast,
# which allows 200 characters and no HTML).
SLOW_DOWN = (
    "⏳ Slow down — I skipped some of your messages; send the command again in a few seconds."
)
