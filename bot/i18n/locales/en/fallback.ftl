# Anything no other handler took. Arguments are HTML-escaped by the caller.

unknown-command = I don't know the command { $command }. /help lists what I can do.
unknown-command-suggest = I don't know { $command } — did you mean { $suggestion }?
commands-only = Send me a command, or a few words to watch for. /help lists the commands.

# Plain text: an offer to subscribe to it or to search for it. The query must stay the only
# code text of the message (a press reads it back from there).
offer-text = Shall I watch for { $query }, or look for it in the stored posts? (/help lists every command.)
offer-invalid =
    I can't use that as a query: { $error }.
    Send a few words to watch for, e.g. { $example }, or a command: /help lists them.
offer-button-subscribe = 🔔 Subscribe to «{ $text }»
offer-button-search = 🔎 Search «{ $text }»

# A forwarded channel post. $channel is the channel's name; $query the only code text.
offer-forward = A post from <b>{ $channel }</b>.
offer-forward-similar = Similar posts would match { $query }.
offer-forward-private = The channel has no public username, so I can't watch it as a source.
offer-forward-nothing = I found nothing in it to search for.
offer-button-watch = 📡 Watch { $channel } as a source
offer-button-similar = 🔎 Search for similar posts

# A button no handler takes any more: a toast (plain text, at most 200 characters).
button-outdated = This button no longer works. Send the command again for fresh buttons.
