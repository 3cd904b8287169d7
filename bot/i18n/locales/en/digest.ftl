# The daily digest (bot/digest/render.py). $dates are the local dates of the covered period
# ("November 27 – 28"); $period is the period itself ("27 Nov 08:00 – 28 Nov 08:00 MSK").

digest-heading = 📰 Digest for { $dates }
digest-intro = { $period } · { $count ->
        [one] { $count } matched post
       *[other] { $count } matched posts
    }, { $stories ->
        [one] { $stories } story
       *[other] { $stories } stories
    }
# A query's heading: the query and how many of the period's posts it matched.
digest-query = 🔎 { $query } — { $count ->
        [one] { $count } post
       *[other] { $count } posts
    }
digest-more = … and { $count ->
        [one] { $count } more post
       *[other] { $count } more posts
    }
digest-shown-above = • all shown above
digest-quiet = Nothing matched your queries in { $period }.

# The 14-day trend chart sent with the digest and by /stats (bot/chart.py).
chart-title = Mentions per day, last { $days } days
chart-other = other
chart-caption = 📈 Mentions of your queries per day, { $dates }
