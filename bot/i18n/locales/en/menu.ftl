# The command menu (at most 256 characters each, plain text).
menu-subscribe = Alert me when a post matches a query
menu-list = My saved queries
menu-unsubscribe = Stop a query (text or number)
menu-search = Newest stored posts matching a query
menu-export = My matches of the last 30 days as a CSV file
menu-stats = Chart of my queries, last 14 days
menu-help = What Dozor does and the query syntax
menu-presets = Topic bundles, subscribed in one tap
menu-settings = Language, time zone, digest, mute, previews
