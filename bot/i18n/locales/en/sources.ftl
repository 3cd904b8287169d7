admin-only = This command is for Dozor's administrators.
sources-empty = No sources are watched. Add one: { $example }
sources-title = <b>{ $count ->
        [one] { $count } source
       *[other] { $count } sources
    }</b>
sources-more = … and { $count } more sources
source-bad-spec =
    ⚠️ { $error }
    For example: { $example }
source-already = { $source } is already watched.
source-added = ✅ Now watching { $source }.
source-not-watched = { $source } is not watched; /sources lists them.
source-removed = 🗑 Stopped watching { $source }. Its posts stay stored.

# Source health, in /sources and `dozor sources list` (plain text).
health-never = never
health-just-now = just now
health-ago = { $span } ago
health-minutes = { $count } min
health-hours = { $count } h
health-days = { $count ->
        [one] { $count } day
       *[other] { $count } days
    }
health-line = { $name } — last post { $last }, { $count } in 24 h
health-never-ok = never read OK
health-last-ok = last read OK { $when }
health-read-ok = read OK { $when }
health-stopped-since = stopped since { $when }: { $error }; { $last_ok }
health-failing = failing: { $error }, { $count ->
        [one] once
       *[other] { $count } times in a row
    }; { $last_ok }
health-failing-since = failing since { $when }: { $error }, { $count ->
        [one] once
       *[other] { $count } times in a row
    }; { $last_ok }
health-warning-stopped = stopped: { $error }
health-warning-failing = failing ({ $count } times in a row): { $error }
health-warning-silent = silent: no new post since { $since }
health-warning-silent-usually = silent: no new post since { $since } (usually ≤ { $gap } apart)
health-unknown-error = unknown error

# What is wrong with a source as written.
source-error-empty = give a source, e.g. @militaryrussiaru or https://t.me/militaryrussiaru
source-error-kind-target = { $spec } is not KIND:TARGET, e.g. tgweb:militaryrussiaru
source-error-unknown = { $spec } is not a source; use @channel, a t.me or x.com link, a feed URL or KIND:TARGET (telegram:@name, tgweb:name, x:@user, rss:URL, jsonl:PATH)
source-error-telegram-name = { $name } is not a Telegram channel username (5–32 letters)
source-error-x-name = { $name } is not an X username (1–15 letters, digits or _)
source-error-rss-url = an rss: source needs an http(s) URL
