"""Reply texts shared by several handlers (HTML; every dynamic part is escaped by the caller)."""

EXAMPLE_QUERY = 'Oreshnik OR Орешник OR "INF Treaty"'

HELP = (
    "<b>Dozor</b> watches Telegram channels and news feeds about arms control and military "
    "affairs and tells you the moment a post mentions what you track.\n\n"
    "<b>Commands</b>\n"
    "/subscribe <i>query</i> — alert me when a post matches\n"
    "/list — my saved queries, numbered\n"
    "/unsubscribe <i>query or number</i> — stop one\n"
    "/help — this message\n\n"
    "<b>Queries</b>\n"
    "<code>Oreshnik</code> — the word, any case, whole words only\n"
    '<code>"INF Treaty"</code> — this exact phrase\n'
    "<code>Oreshnik OR Орешник</code> — either\n"
    "<code>moratorium INF</code> — both\n\n"
    f"Example: <code>/subscribe {EXAMPLE_QUERY}</code>\n"
    "You also get a daily digest of everything that matched."
)
