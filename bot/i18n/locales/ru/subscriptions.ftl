subscribe-usage =
    Напишите, за чем следить, например:
    { $example }
subscribe-too-many = У вас уже { $count ->
        [one] { $count } запрос
        [few] { $count } запроса
       *[many] { $count } запросов
    } — это максимум для одного чата. Сначала удалите какой-нибудь через /unsubscribe.
subscribe-duplicate = Вы уже подписаны на { $query }.
subscribe-done =
    ✅ Подписка на { $query } оформлена. Я пришлю пост, как только он подойдёт.
    Все ваши запросы — /list.
unsubscribe-usage = Какой запрос? Укажите его номер из /list или текст, например { $example }
unsubscribe-unknown = У вас нет запроса { $query }. /list покажет ваши запросы с номерами.
unsubscribe-done = 🗑 Подписка на { $query } отменена.
list-empty = У вас пока нет сохранённых запросов. Попробуйте { $example }
list-title = <b>Ваши запросы</b>
list-footer = Удалить запрос: /unsubscribe НОМЕР.
