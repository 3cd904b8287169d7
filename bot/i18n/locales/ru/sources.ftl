admin-only = Эта команда — для администраторов «Дозора».
sources-empty = Ни один источник не отслеживается. Добавьте: { $example }
sources-title = <b>{ $count ->
        [one] { $count } источник
        [few] { $count } источника
       *[many] { $count } источников
    }</b>
sources-more = … и ещё { $count ->
        [one] { $count } источник
        [few] { $count } источника
       *[many] { $count } источников
    }
source-bad-spec =
    ⚠️ { $error }
    Например: { $example }
source-already = { $source } уже отслеживается.
source-added = ✅ Теперь отслеживаю { $source }.
source-not-watched = { $source } не отслеживается; список — /sources.
source-removed = 🗑 Больше не отслеживаю { $source }. Его посты остаются в базе.

health-never = никогда
health-just-now = только что
health-ago = { $span } назад
health-minutes = { $count } мин
health-hours = { $count } ч
health-days = { $count ->
        [one] { $count } день
        [few] { $count } дня
       *[many] { $count } дней
    }
health-line = { $name } — последний пост { $last }, за 24 ч: { $count }
health-never-ok = ни разу не прочитан
health-last-ok = последнее успешное чтение { $when }
health-read-ok = прочитан { $when }
health-stopped-since = остановлен с { $when }: { $error }; { $last_ok }
health-failing = сбой: { $error }, { $count ->
        [1] { $count } раз
        [one] { $count } раз подряд
        [few] { $count } раза подряд
       *[many] { $count } раз подряд
    }; { $last_ok }
health-failing-since = сбои с { $when }: { $error }, { $count ->
        [1] { $count } раз
        [one] { $count } раз подряд
        [few] { $count } раза подряд
       *[many] { $count } раз подряд
    }; { $last_ok }
health-warning-stopped = остановлен: { $error }
health-warning-failing = сбои ({ $count ->
        [1] { $count } раз
        [one] { $count } раз подряд
        [few] { $count } раза подряд
       *[many] { $count } раз подряд
    }): { $error }
health-warning-silent = молчит: нет новых постов с { $since }
health-warning-silent-usually = молчит: нет новых постов с { $since } (обычно перерыв ≤ { $gap })
health-unknown-error = неизвестная ошибка

source-error-empty = укажите источник, например @militaryrussiaru или https://t.me/militaryrussiaru
source-error-kind-target = { $spec } не в виде ВИД:ЦЕЛЬ, например tgweb:militaryrussiaru
source-error-unknown = { $spec } — не источник; укажите @канал, ссылку t.me или x.com, адрес ленты или ВИД:ЦЕЛЬ (telegram:@имя, tgweb:имя, x:@пользователь, rss:URL, jsonl:ПУТЬ)
source-error-telegram-name = { $name } — не имя Telegram-канала (5–32 буквы)
source-error-x-name = { $name } — не имя пользователя X (1–15 букв, цифр или _)
source-error-rss-url = источнику rss: нужен адрес http(s)
