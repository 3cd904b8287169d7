# Texts several commands share. Arguments are HTML-escaped by the caller.

example-query = Oreshnik OR "INF Treaty" -лещина
query-invalid =
    ⚠️ I can't use that query: { $error }.
    A correct example: { $example }
handler-failed = ⚠️ Something went wrong while I handled that message, and it has been logged (update { $update }). Please try again in a minute; /help lists what I can do.
# Plain text (also a button's toast: 200 characters, no HTML).
slow-down = ⏳ Slow down — I skipped some of your messages; send the command again in a few seconds.
more-items = … and { $count } more
