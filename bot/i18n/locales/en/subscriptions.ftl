# /subscribe, /unsubscribe, /list and its buttons. Arguments are HTML-escaped by the caller;
# $channel is a channel's name, already bold.

subscribe-usage =
    Tell me what to watch for, e.g.
    { $example }
subscribe-too-many = You already have { $count } queries, the most one chat can keep. Remove one with /unsubscribe first.
subscribe-channel-too-many = { $channel } already has { $count } queries, the most one chat can keep. Remove one with /unsubscribe first.
subscribe-duplicate = You are already subscribed to { $query }.
subscribe-channel-duplicate = { $channel } is already subscribed to { $query }.
subscribe-done =
    ✅ Subscribed to { $query }. I'll alert you when a post matches.
    See all your queries with /list.
subscribe-channel-done =
    ✅ { $channel } is subscribed to { $query }. I'll post there when a post matches.
    See its queries with { $list }.
subscribe-preview = { $count ->
        [one] In the last { $days } days, { $count } stored post would have matched:
       *[other] In the last { $days } days, { $count } stored posts would have matched; the newest:
    }
subscribe-preview-at-least = { $count ->
        [one] In the last { $days } days, at least { $count } stored post would have matched (I stopped looking after a while):
       *[other] In the last { $days } days, at least { $count } stored posts would have matched (I stopped looking after a while); the newest:
    }
subscribe-preview-none = No stored post of the last { $days } days matches it: if you expected some, check the spelling.
subscribe-preview-slow = I couldn't look through the last { $days } days in time; new posts will still be matched.
subscribe-preview-post = • { $source } — { $excerpt }

unsubscribe-usage = Which query? Give its number from /list or its text, e.g. { $example }
unsubscribe-unknown = You have no query { $query }. /list shows your queries with their numbers.
unsubscribe-closest =
    You have no query { $query }. The closest saved ones:
    { $closest }
    Remove one with /unsubscribe NUMBER.
unsubscribe-done = 🗑 Unsubscribed from { $query }.
unsubscribe-channel-done = 🗑 { $channel } is unsubscribed from { $query }.

list-empty = You have no saved queries yet. Try { $example }
list-channel-empty = { $channel } has no saved queries yet.
list-title = <b>Your queries</b> ({ $count ->
        [one] { $count } query
       *[other] { $count } queries
    })
list-channel-title = <b>Queries of { $channel }</b> ({ $count ->
        [one] { $count } query
       *[other] { $count } queries
    })
list-page = Page { $page } of { $pages }
list-item =
    { $number }. { $query }
    { $paused ->
        [yes] ⏸ paused · { $mode }
       *[no] { $mode }
    }
list-mode-both = 🔔📰 alerts and digest
list-mode-instant = 🔔 instant alerts only
list-mode-digest = 📰 digest only
list-legend = Buttons: ⏸ pause or ▶️ resume · the mode (tap to switch 🔔📰 → 🔔 → 📰) · 🗑 remove.

# Button labels: short, a phone shows three in a row.
list-button-pause = ⏸ { $number }
list-button-resume = ▶️ { $number }
list-button-mode-both = 🔔📰 { $number }
list-button-mode-instant = 🔔 { $number }
list-button-mode-digest = 📰 { $number }
list-button-remove = 🗑 { $number }
list-button-previous = ◀
list-button-next = ▶

# Toasts after a press: plain text, at most 200 characters, no HTML.
list-toast-paused = ⏸ Paused: no alerts from it until you resume it.
list-toast-resumed = ▶️ Resumed.
list-toast-removed = 🗑 Removed.
list-toast-mode-both = 🔔📰 Instant alerts and the digest.
list-toast-mode-instant = 🔔 Instant alerts only.
list-toast-mode-digest = 📰 Digest only.
list-toast-gone = This query was already removed; the list is updated.
list-toast-changed = The list has changed; here it is as it is now.
list-toast-outdated = This button no longer works. Send /list for a fresh list.
list-toast-admins-only = Only the group's administrators can change its queries.
list-toast-channel-admins-only = Only the channel's administrators can change its queries.

# Configuring a channel from a private chat: /subscribe @channel QUERY.
channel-private-only = Configure a channel from your private chat with me, e.g. /subscribe @channel QUERY.
channel-not-found = I can't find the channel { $channel }. Check its name, and add me to it as an administrator.
channel-not-channel = { $channel } is not a channel.
channel-bot-not-admin = I'm not an administrator of { $channel }: add me there as an administrator allowed to post, then try again.
channel-user-not-admin = Only administrators of { $channel } can change its queries.
