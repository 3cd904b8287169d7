# /presets: ready-made topic bundles. $title and $description are escaped by the caller.

presets-title = <b>Topic bundles</b>
    One tap subscribes to every query of a bundle; one more removes them all again.
presets-item = { $held ->
        [0] ▫️
       *[other] ✅
    } <b>{ $title }</b> — { $count ->
        [one] { $count } query
       *[other] { $count } queries
    }
    { $description }
presets-footer = Your own queries are never touched by a bundle; /list shows them all.
presets-none = No topic bundles are offered here yet.
presets-broken = Topic bundles are unavailable right now: their file has a problem, and the administrators have been told in the log.

# Button labels (plain text).
presets-button-add = ➕ { $title } ({ $count })
presets-button-remove = ✖️ Remove { $title }

# Toasts on a press: plain text, at most 200 characters.
presets-toast-added = ✅ { $title }: { $count ->
        [one] { $count } query added
       *[other] { $count } queries added
    }.
presets-toast-removed = 🗑 { $count ->
        [one] { $count } query removed
       *[other] { $count } queries removed
    }.
presets-toast-nothing = Nothing to remove: this bundle is not subscribed.
presets-toast-already = This bundle is already subscribed.
presets-toast-have-all = You already have every query of this bundle.
presets-toast-too-many = This bundle adds { $count ->
        [one] { $count } query
       *[other] { $count } queries
    }, but only { $free } of { $limit } places are free. Remove some queries with /list first.
presets-toast-outdated = This button is out of date. Send /presets for fresh ones.
