# /settings и его команды: /lang, /timezone, /digest, /mute, /quiet, /previews.
# Аргументы экранирует вызывающий код. Всплывающие подсказки (settings-saved,
# settings-stale) — простой текст не длиннее 200 символов.

settings-title = ⚙️ <b>Настройки этого чата</b>
settings-language = 🌐 Язык: { $language }
settings-zone = 🕓 Часовой пояс: { $zone } (сейчас { $now })
settings-digest-at = 📰 Ежедневная сводка: в { $time }
settings-digest-off = 📰 Ежедневная сводка: выключена
settings-alerts-on = 🔔 Оповещения: включены
settings-alerts-muted = 🔕 Оповещения: без звука до { $until }
settings-quiet-hours = 🌙 Тихие часы: { $start }–{ $end }
settings-quiet-none = 🌙 Тихие часы: нет
settings-previews-on = 🔗 Превью ссылок в оповещениях: включены
settings-previews-off = 🔗 Превью ссылок в оповещениях: выключены
settings-commands = Другой пояс: { $timezone }. А также: { $digest }, { $mute }, { $quiet }.
settings-group-note = Менять их могут только администраторы группы.

# Каждый язык — своим названием (одинаково во всех каталогах).
settings-language-ru = Русский
settings-language-en = English

settings-button-zone-moscow = Москва
settings-button-zone-kyiv = Киев
settings-button-zone-minsk = Минск
settings-button-zone-london = Лондон
settings-button-zone-berlin = Берлин
settings-button-zone-new-york = Нью-Йорк
settings-button-zone-utc = UTC
settings-button-digest = 📰 { $time }
settings-button-digest-off = 📰 Выкл.
settings-button-mute-hour = 🔕 1 час
settings-button-mute-night = 🔕 8 часов
settings-button-mute-day = 🔕 1 день
settings-button-unmute = 🔔 Включить звук
settings-button-previews-on = 🔗 Превью вкл.
settings-button-previews-off = 🔗 Превью выкл.

settings-saved = ✅ Сохранено
settings-stale = Эта кнопка устарела; сейчас показаны действующие настройки.

settings-lang-usage = 🌐 Язык здесь: { $language }. Выберите { $ru } или { $en }.
settings-lang-unknown = ⚠️ Языка { $language } я не знаю. Выберите { $ru } или { $en }.
settings-lang-done = ✅ Теперь я пишу здесь по-русски.

settings-zone-usage =
    🕓 Часовой пояс: { $zone }. В нём показывается время в оповещениях, сводках и поиске.
    Укажите свой как Регион/Город, например { $examples }.
settings-zone-unknown =
    ⚠️ Часового пояса { $zone } я не знаю.
    Укажите его как Регион/Город, например { $examples }.
settings-zone-suggest =
    ⚠️ Часового пояса { $zone } я не знаю. Может быть, { $suggestion }?
    Другие примеры: { $examples }.
settings-zone-done = ✅ Часовой пояс: { $zone }. Там сейчас { $now }; в нём показывается время в оповещениях, сводках и поиске.

settings-digest-usage = 📰 Ежедневная сводка приходит в { $time } ({ $zone }). Изменить время: { $example }, выключить: { $off }. Ещё: <code>/digest chart on|off</code> (график за 14 дней), <code>/digest quiet on|off</code> (сообщение в дни, когда ничего не нашлось).
settings-digest-usage-off = 📰 Ежедневная сводка выключена. Включить: { $example }.
settings-digest-invalid = ⚠️ { $value } — не время суток. Укажите его как ЧЧ:ММ, например { $example }, или { $off }.
settings-digest-done = ✅ Ежедневная сводка будет приходить в { $time } ({ $zone }).
settings-digest-off-done = ✅ Ежедневная сводка выключена. Включить снова: { $example }.
settings-digest-extras = 📈 График в сводке: { $chart ->
        [on] да
       *[off] нет
    } · в тихие дни: { $quiet ->
        [on] короткое сообщение
       *[off] ничего
    }
settings-digest-chart-usage = 📈 График за 14 дней в сводке: { $state ->
        [on] включён
       *[off] выключен
    }. Изменить: <code>/digest chart on</code> или <code>/digest chart off</code>.
settings-digest-chart-done = ✅ { $state ->
        [on] Сводка будет приходить с графиком ваших запросов за 14 дней.
       *[off] Сводка будет приходить без графика. /stats по-прежнему его покажет.
    }
settings-digest-quiet-days-usage = 📰 В дни, когда ничего не нашлось, { $state ->
        [on] приходит короткое сообщение
       *[off] сводка не приходит
    }. Изменить: <code>/digest quiet on</code> или <code>/digest quiet off</code>.
settings-digest-quiet-days-done = ✅ { $state ->
        [on] В тихие дни будет приходить короткое сообщение, что ничего не нашлось.
       *[off] В тихие дни сводка приходить не будет.
    }

settings-mute-usage = 🔔 Оповещения включены. Отключить звук на время: { $examples }. Оповещения за это время подождут и придут вместе потом.
settings-mute-usage-muted = 🔕 Оповещения без звука до { $until }. { $off } — включить снова.
settings-mute-invalid = ⚠️ Не могу понять { $value } как срок (не больше 30 дней). Например: { $examples }.
settings-mute-done = 🔕 Оповещения без звука до { $until }. Пришедшие за это время подождут и придут вместе потом; ничего не потеряется. { $off } — включить раньше.
settings-mute-off-done = 🔔 Оповещения снова включены; отложенные придут в ближайшее время.

settings-quiet-usage = 🌙 Тихих часов нет. Задать: { $example } — оповещения в эти часы подождут и придут вместе, когда они кончатся.
settings-quiet-usage-set = 🌙 Тихие часы: { $start }–{ $end } ({ $zone }). Изменить: { $example }, выключить: { $off }.
settings-quiet-invalid = ⚠️ Не могу понять { $value } как тихие часы. Укажите начало и конец как ЧЧ:ММ-ЧЧ:ММ, например { $example }, или { $off }.
settings-quiet-empty = ⚠️ Начало и конец тихих часов должны различаться, например { $example }.
settings-quiet-done = 🌙 Тихие часы: { $start }–{ $end } каждый день ({ $zone }). Оповещения в эти часы подождут до { $end } и придут вместе; ничего не потеряется.
settings-quiet-off-done = ✅ Тихих часов больше нет; отложенные оповещения придут в ближайшее время.

settings-previews-usage-on = 🔗 В оповещениях показывается превью ссылки на пост. { $off } — выключить.
settings-previews-usage-off = 🔗 В оповещениях нет превью ссылок. { $on } — включить.
settings-previews-invalid = ⚠️ { $value } — ни «on», ни «off»: отправьте { $on } или { $off }.
settings-previews-done-on = ✅ Теперь в оповещениях есть превью ссылки на пост.
settings-previews-done-off = ✅ Превью ссылок в оповещениях больше не показываются.
