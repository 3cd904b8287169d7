# /stats: график чата для всех, показатели сервиса для администраторов Дозора.

stats-chart-empty = 📈 За последние 14 дней по вашим запросам ничего не нашлось, поэтому графика пока нет. Ваши запросы: /list.
stats-title = 📊 <b>Дозор сейчас</b>
stats-subscribers = 👥 { $count ->
        [one] { $count } подписчик
        [few] { $count } подписчика
       *[many] { $count } подписчиков
    }, из них { $active ->
        [one] { $active } активный
       *[other] { $active } активных
    }
stats-queries = 🔎 { $count ->
        [one] { $count } запрос
        [few] { $count } запроса
       *[many] { $count } запросов
    }, на паузе: { $paused }
stats-alerts = 🔔 Сегодня (UTC) { $count ->
        [one] отправлено { $count } уведомление
        [few] отправлено { $count } уведомления
       *[many] отправлено { $count } уведомлений
    }
stats-outbox = 📤 { $count ->
        [one] { $count } сообщение ждёт
        [few] { $count } сообщения ждут
       *[many] { $count } сообщений ждут
    } отправки, самое старое ждёт { $age }
stats-outbox-empty = 📤 Ничего не ждёт отправки
stats-sources = 📡 { $count ->
        [one] { $count } источник
        [few] { $count } источника
       *[many] { $count } источников
    }, { $failing ->
        [0] все работают
       *[other] с ошибками: { $failing }
    }
stats-age-now = меньше минуты
stats-age-minutes = { $count ->
        [one] { $count } минуту
        [few] { $count } минуты
       *[many] { $count } минут
    }
stats-age-hours = { $count ->
        [one] { $count } час
        [few] { $count } часа
       *[many] { $count } часов
    }
stats-age-days = { $count ->
        [one] { $count } день
        [few] { $count } дня
       *[many] { $count } дней
    }
