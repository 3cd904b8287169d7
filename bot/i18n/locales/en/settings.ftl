# /settings and its commands: /lang, /timezone, /digest, /mute, /quiet, /previews.
# Arguments are HTML-escaped by the caller. Toasts (settings-saved, settings-stale) are
# plain text of at most 200 characters.

settings-title = ⚙️ <b>Settings of this chat</b>
settings-language = 🌐 Language: { $language }
settings-zone = 🕓 Time zone: { $zone } (now { $now })
settings-digest-at = 📰 Daily digest: at { $time }
settings-digest-off = 📰 Daily digest: off
settings-alerts-on = 🔔 Alerts: on
settings-alerts-muted = 🔕 Alerts: muted until { $until }
settings-quiet-hours = 🌙 Quiet hours: { $start }–{ $end }
settings-quiet-none = 🌙 Quiet hours: none
settings-previews-on = 🔗 Link previews in alerts: on
settings-previews-off = 🔗 Link previews in alerts: off
settings-commands = Another zone: { $timezone }. Also: { $digest }, { $mute }, { $quiet }.
settings-group-note = Only the group's administrators can change these.

# Each language by its own name (the same in every catalogue).
settings-language-ru = Русский
settings-language-en = English

settings-button-zone-moscow = Moscow
settings-button-zone-kyiv = Kyiv
settings-button-zone-minsk = Minsk
settings-button-zone-london = London
settings-button-zone-berlin = Berlin
settings-button-zone-new-york = New York
settings-button-zone-utc = UTC
settings-button-digest = 📰 { $time }
settings-button-digest-off = 📰 Off
settings-button-mute-hour = 🔕 1 hour
settings-button-mute-night = 🔕 8 hours
settings-button-mute-day = 🔕 1 day
settings-button-unmute = 🔔 Unmute
settings-button-previews-on = 🔗 Previews on
settings-button-previews-off = 🔗 Previews off

settings-saved = ✅ Saved
settings-stale = This button is out of date; the settings shown now are current.

settings-lang-usage = 🌐 I write here in { $language }. Choose with { $ru } or { $en }.
settings-lang-unknown = ⚠️ I don't speak { $language }. Choose { $ru } or { $en }.
settings-lang-done = ✅ From now on I write here in English.

settings-zone-usage =
    🕓 Time zone: { $zone }. Alerts, digests and search show times in it.
    Set yours as Area/City, e.g. { $examples }.
settings-zone-unknown =
    ⚠️ I don't know the time zone { $zone }.
    Give it as Area/City, e.g. { $examples }.
settings-zone-suggest =
    ⚠️ I don't know the time zone { $zone }. Did you mean { $suggestion }?
    Other examples: { $examples }.
settings-zone-done = ✅ Time zone: { $zone }. It is { $now } there now; alerts, digests and search show times in it.

settings-digest-usage = 📰 The daily digest comes at { $time } ({ $zone }). Change the time with { $example } or turn it off with { $off }. Options: <code>/digest chart on|off</code> (the 14-day chart), <code>/digest quiet on|off</code> (a note on days when nothing matched).
settings-digest-usage-off = 📰 The daily digest is off. Turn it on with { $example }.
settings-digest-invalid = ⚠️ { $value } is not a time of day. Send it as HH:MM, e.g. { $example }, or { $off }.
settings-digest-done = ✅ The daily digest comes at { $time } ({ $zone }).
settings-digest-off-done = ✅ The daily digest is off. { $example } turns it on again.
settings-digest-extras = 📈 Chart with the digest: { $chart ->
        [on] on
       *[off] off
    } · on quiet days: { $quiet ->
        [on] a short note
       *[off] no message
    }
settings-digest-chart-usage = 📈 The 14-day chart comes with the digest: { $state ->
        [on] on
       *[off] off
    }. Change it with <code>/digest chart on</code> or <code>/digest chart off</code>.
settings-digest-chart-done = ✅ { $state ->
        [on] The digest comes with a 14-day chart of your queries.
       *[off] The digest comes without the chart. /stats still shows it.
    }
settings-digest-quiet-days-usage = 📰 On days when nothing matched, { $state ->
        [on] you get a short note
       *[off] no digest is sent
    }. Change it with <code>/digest quiet on</code> or <code>/digest quiet off</code>.
settings-digest-quiet-days-done = ✅ { $state ->
        [on] On quiet days you get a short note that nothing matched.
       *[off] On quiet days no digest is sent.
    }

settings-mute-usage = 🔔 Alerts are on. Mute them for a while with { $examples }: alerts that arrive meanwhile wait and come together afterwards.
settings-mute-usage-muted = 🔕 Alerts are muted until { $until }. { $off } turns them back on.
settings-mute-invalid = ⚠️ I can't read { $value } as a duration (at most 30 days). For example: { $examples }.
settings-mute-done = 🔕 Alerts are muted until { $until }. Those that arrive meanwhile wait and come together afterwards; nothing is lost. { $off } ends it sooner.
settings-mute-off-done = 🔔 Alerts are on again; any that waited follow shortly.

settings-quiet-usage = 🌙 No quiet hours. Set them with { $example }: alerts that arrive then wait and come together when they end.
settings-quiet-usage-set = 🌙 Quiet hours: { $start }–{ $end } ({ $zone }). Change them with { $example } or turn them off with { $off }.
settings-quiet-invalid = ⚠️ I can't read { $value } as quiet hours. Send start and end as HH:MM-HH:MM, e.g. { $example }, or { $off }.
settings-quiet-empty = ⚠️ Quiet hours must start and end at different times, e.g. { $example }.
settings-quiet-done = 🌙 Quiet hours: { $start }–{ $end } every day ({ $zone }). Alerts that arrive then wait until { $end } and come together; nothing is lost.
settings-quiet-off-done = ✅ No quiet hours any more; any alerts that waited follow shortly.

settings-previews-usage-on = 🔗 Alerts show a preview of the post's link. { $off } turns it off.
settings-previews-usage-off = 🔗 Alerts show no link previews. { $on } turns them on.
settings-previews-invalid = ⚠️ { $value } is neither on nor off: send { $on } or { $off }.
settings-previews-done-on = ✅ Alerts now show a preview of the post's link.
settings-previews-done-off = ✅ Alerts no longer show link previews.
