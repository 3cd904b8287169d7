# /search. Arguments are HTML-escaped by the caller.

search-usage = What should I look for? e.g. { $example }
# Also a button's toast (plain text, 200 characters at most).
search-busy = ⏳ Your previous search is still running; I'll answer it before the next one.
search-none = No stored post matches { $query }.
search-none-finished = No stored post matches { $query } (I looked through the newest { $looked ->
        [one] post
       *[other] { $looked } posts
    }).
search-none-slow = No stored post matches { $query } (the query is slow: I stopped after the newest { $looked ->
        [one] post
       *[other] { $looked } posts
    }).
search-found = 🔎 { $count ->
        [one] { $count } post matches
       *[other] { $count } posts match
    } { $query }
# An estimate (rounded), from the share of the candidates looked at so far.
search-found-about = 🔎 About { $count ->
        [one] { $count } post matches
       *[other] { $count } posts match
    } { $query }
search-page = (page { $page } of { $pages })
search-page-about = (page { $page } of ~{ $pages })
search-scan-note = <i>The search index cannot narrow this query (a /regex/), so I looked only through the newest { $looked ->
        [one] post
       *[other] { $looked } posts
    }.</i>
search-slow-note = <i>The query is slow: I stopped after { $looked ->
        [one] { $looked } post
       *[other] { $looked } posts
    }.</i>
# A button's toast (plain text, 200 characters at most).
search-expired = This search has expired — send /search again.
