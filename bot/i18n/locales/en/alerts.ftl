# The chrome of real-time alerts (bot/delivery/render.py). Arguments are HTML-escaped by the
# caller; the texts are inserted into Telegram HTML as they are.

# Above several alerts sent together as one message.
alert-title = 🔔 { $count ->
        [one] { $count } new match
       *[other] { $count } new matches
    }
alert-forwarded = forwarded from { $source }
alert-media = { $count ->
        [one] { $count } photo/video
       *[other] { $count } photos/videos
    }
alert-edited = edited
alert-deleted = deleted
alert-open = Open the original post
# Other sources telling the same story: "also in Rybar, @milinfolive, +3".
also-in = also in { $names }{ $more ->
        [0] {""}
       *[other] , +{ $more }
    }
also-similar = { $count ->
        [one] +{ $count } similar post
       *[other] +{ $count } similar posts
    }
