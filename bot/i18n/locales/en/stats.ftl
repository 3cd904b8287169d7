# /stats: the chat's chart for everyone, the service's figures for Dozor's administrators.

stats-chart-empty = 📈 Nothing matched your queries in the last 14 days, so there is no chart yet. /list shows your queries.
stats-title = 📊 <b>Dozor now</b>
stats-subscribers = 👥 { $count ->
        [one] { $count } subscriber
       *[other] { $count } subscribers
    }, { $active } active
stats-queries = 🔎 { $count ->
        [one] { $count } query
       *[other] { $count } queries
    }, { $paused } paused
stats-alerts = 🔔 { $count ->
        [one] { $count } alert
       *[other] { $count } alerts
    } sent today (UTC)
stats-outbox = 📤 { $count ->
        [one] { $count } message
       *[other] { $count } messages
    } waiting to be sent, the oldest for { $age }
stats-outbox-empty = 📤 Nothing waiting to be sent
stats-sources = 📡 { $count ->
        [one] { $count } source
       *[other] { $count } sources
    }, { $failing ->
        [0] none failing
       *[other] { $failing } failing
    }
stats-age-now = under a minute
stats-age-minutes = { $count ->
        [one] { $count } minute
       *[other] { $count } minutes
    }
stats-age-hours = { $count ->
        [one] { $count } hour
       *[other] { $count } hours
    }
stats-age-days = { $count ->
        [one] { $count } day
       *[other] { $count } days
    }
