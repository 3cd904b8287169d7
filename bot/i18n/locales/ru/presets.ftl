# /presets: готовые подборки тем. $title и $description экранирует вызывающий код.

presets-title = <b>Подборки тем</b>
    Одно нажатие — подписка на все запросы подборки; ещё одно — все они удалены.
presets-item = { $held ->
        [0] ▫️
       *[other] ✅
    } <b>{ $title }</b> — { $count ->
        [one] { $count } запрос
        [few] { $count } запроса
       *[many] { $count } запросов
    }
    { $description }
presets-footer = Ваши собственные запросы подборки не трогают; все запросы — /list.
presets-none = Готовых подборок здесь пока нет.
presets-broken = Подборки сейчас недоступны: в их файле ошибка, администраторы увидят её в журнале.

# Надписи на кнопках (простой текст).
presets-button-add = ➕ { $title } ({ $count })
presets-button-remove = ✖️ Убрать: { $title }

# Всплывающие ответы на нажатия: простой текст, не больше 200 символов.
presets-toast-added = ✅ { $title }: { $count ->
        [one] добавлен { $count } запрос
        [few] добавлено { $count } запроса
       *[many] добавлено { $count } запросов
    }.
presets-toast-removed = 🗑 { $count ->
        [one] Удалён { $count } запрос
        [few] Удалено { $count } запроса
       *[many] Удалено { $count } запросов
    }.
presets-toast-nothing = Удалять нечего: на эту подборку вы не подписаны.
presets-toast-already = На эту подборку вы уже подписаны.
presets-toast-have-all = Все запросы этой подборки у вас уже есть.
presets-toast-too-many = Подборка добавит { $count ->
        [one] { $count } запрос
        [few] { $count } запроса
       *[many] { $count } запросов
    }, а свободно только { $free ->
        [one] { $free } место
        [few] { $free } места
       *[many] { $free } мест
    } из { $limit }. Сначала удалите часть запросов через /list.
presets-toast-outdated = Эта кнопка устарела. Отправьте /presets, чтобы получить новые.
