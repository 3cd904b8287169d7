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
