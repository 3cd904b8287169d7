# The daily digest's chrome (bot/digest.py). $period is the covered period, e.g.
# "19 Nov 08:00 – 20 Nov 08:00 MSK".

digest-title = 📰 Digest: { $count ->
        [one] { $count } matched post
       *[other] { $count } matched posts
    }, { $period }
