welcome = 👋 Welcome to Dozor.
help =
    <b>Dozor</b> watches Telegram channels and news feeds about arms control and military affairs and tells you the moment a post mentions what you track.

    <b>Commands</b>
    /subscribe <i>query</i> — alert me when a post matches
    /list — my queries, with buttons to pause, remove or choose alerts/digest
    /unsubscribe <i>query or number</i> — stop one
    /search <i>query</i> — stored posts that match, newest first
    /presets — topic bundles, subscribed in one tap
    /export <i>days</i> — my matches as a CSV file (<code>/export 90 json</code> for JSON)
    /stats — a chart of my queries' mentions per day, last 14 days
    /settings — language, time zone, digest, mute, link previews
    /lang, /timezone, /digest, /mute, /quiet, /previews — the same settings, typed
    /help — this message
    A channel you administer: <code>/subscribe @channel query</code> here, and alerts go there.

    <b>Queries</b>
    <code>Oreshnik</code> — any form, case or script: Орешника, Орєшник, Oreshnik's
    <code>"INF Treaty"</code> — these words together, in this order
    <code>Oreshnik Belarus</code> or <code>… AND …</code> — both
    <code>Oreshnik OR Burevestnik</code> (or <code>|</code>) — either
    <code>Орешник -лещина</code> (or <code>NOT</code>) — without
    <code>(Kalibr OR Kinzhal) Crimea</code> — grouping
    <code>морат*</code> — words starting so; <code>=Калибр</code> — exactly this form
    <code>/9[МM]7\d\d/</code> — a regular expression
    Names match across scripts (Kalibr finds Калибр, НАТО finds NATO); known names find their aliases (INF finds РСМД, 9M729 finds SSC-8). An acronym of 2–5 capitals (<code>ПРО</code>, <code>INF</code>) matches only words written in capitals, not «про» or «Inf.»; type it in lower case to match any case.

    Example: <code>/subscribe { $example }</code>
    You also get a daily digest of everything that matched.
