search-usage = What should I look for? e.g. { $example }
search-busy = ⏳ Your previous search is still running; I'll answer it before the next one.
search-none-finished = No stored post matches { $query } (I looked through the newest { $looked }).
search-none-slow = No stored post matches { $query } (the query is slow: I stopped after the newest { $looked }).
search-title = 🔎 { $count ->
        [one] { $count } newest post
       *[other] { $count } newest posts
    } matching { $query }
search-slow-note = <i>The query is slow: I stopped after the newest { $looked } posts.</i>
