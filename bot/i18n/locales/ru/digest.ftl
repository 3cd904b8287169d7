# Ежедневная сводка (bot/digest/render.py). $dates — местные даты охваченного периода
# («27–28 ноября»); $period — сам период («27 нояб. 08:00 – 28 нояб. 08:00 MSK»).

digest-heading = 📰 Сводка за { $dates }
digest-intro = { $period } · { $count ->
        [one] { $count } найденный пост
        [few] { $count } найденных поста
       *[many] { $count } найденных постов
    }, { $stories ->
        [one] { $stories } сюжет
        [few] { $stories } сюжета
       *[many] { $stories } сюжетов
    }
# Заголовок запроса: запрос и сколько постов периода он нашёл.
digest-query = 🔎 { $query } — { $count ->
        [one] { $count } пост
        [few] { $count } поста
       *[many] { $count } постов
    }
digest-more = … и ещё { $count ->
        [one] { $count } пост
        [few] { $count } поста
       *[many] { $count } постов
    }
digest-shown-above = • все показаны выше
digest-quiet = За { $period } по вашим запросам ничего не нашлось.

# График упоминаний за 14 дней: со сводкой и по /stats (bot/chart.py).
chart-title = Упоминания по дням, последние { $days ->
        [one] { $days } день
        [few] { $days } дня
       *[many] { $days } дней
    }
chart-other = другие
chart-caption = 📈 Упоминания ваших запросов по дням, { $dates }
