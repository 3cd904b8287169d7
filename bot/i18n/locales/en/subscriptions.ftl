subscribe-usage =
    Tell me what to watch for, e.g.
    { $example }
subscribe-too-many = You already have { $count } queries, the most one chat can keep. Remove one with /unsubscribe first.
subscribe-duplicate = You are already subscribed to { $query }.
subscribe-done =
    ✅ Subscribed to { $query }. I'll alert you when a post matches.
    See all your queries with /list.
unsubscribe-usage = Which query? Give its number from /list or its text, e.g. { $example }
unsubscribe-unknown = You have no query { $query }. /list shows your queries with their numbers.
unsubscribe-done = 🗑 Unsubscribed from { $query }.
list-empty = You have no saved queries yet. Try { $example }
list-title = <b>Your queries</b>
list-footer = Remove one with /unsubscribe NUMBER.
