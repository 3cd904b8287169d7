# /export. Arguments are HTML-escaped by the caller; the caption goes with the file.

export-invalid = ⚠️ { $value } is not a period I can export. Send the number of days, 1 to { $max }, and <code>json</code> for JSON instead of CSV: { $examples }.
export-busy = ⏳ Your previous export is still being prepared; it comes first.
export-empty = Nothing matched your queries in the last { $days ->
        [one] day
       *[other] { $days } days
    }: no file to send.
export-caption = 📄 Matches of the last { $days ->
        [one] day
       *[other] { $days } days
    }: { $count ->
        [one] { $count } post
       *[other] { $count } posts
    }, newest first.
# A second line of the caption when the file holds only the newest posts of the period.
export-cut = ✂️ Older posts did not fit: one file holds at most { $posts } posts and { $megabytes } MB. Ask for fewer days, e.g. { $example }.
