# /subscribe, /unsubscribe, /list и его кнопки. Аргументы уже экранированы для HTML;
# $channel — название канала, уже жирным.

subscribe-usage =
    Напишите, за чем следить, например:
    { $example }
subscribe-too-many = У вас уже { $count ->
        [one] { $count } запрос
        [few] { $count } запроса
       *[many] { $count } запросов
    } — это максимум для одного чата. Сначала удалите какой-нибудь через /unsubscribe.
subscribe-channel-too-many = У канала { $channel } уже { $count ->
        [one] { $count } запрос
        [few] { $count } запроса
       *[many] { $count } запросов
    } — это максимум для одного чата. Сначала удалите какой-нибудь через /unsubscribe.
subscribe-duplicate = Вы уже подписаны на { $query }.
subscribe-channel-duplicate = Канал { $channel } уже подписан на { $query }.
subscribe-done =
    ✅ Подписка на { $query } оформлена. Я пришлю пост, как только он подойдёт.
    Все ваши запросы — /list.
subscribe-channel-done =
    ✅ Канал { $channel } подписан на { $query }. Подходящие посты я буду публиковать там.
    Все запросы канала — { $list }.
subscribe-preview = { $count ->
        [1] За последние { $days } дней подошёл бы { $count } сохранённый пост:
        [one] За последние { $days } дней подошёл бы { $count } сохранённый пост, самые свежие:
        [few] За последние { $days } дней подошли бы { $count } сохранённых поста, самые свежие:
       *[many] За последние { $days } дней подошли бы { $count } сохранённых постов, самые свежие:
    }
subscribe-preview-at-least = { $count ->
        [1] За последние { $days } дней подошёл бы как минимум { $count } сохранённый пост (дальше я искать не стал):
        [one] За последние { $days } дней подошёл бы как минимум { $count } сохранённый пост (дальше я искать не стал), самые свежие:
        [few] За последние { $days } дней подошли бы как минимум { $count } сохранённых поста (дальше я искать не стал), самые свежие:
       *[many] За последние { $days } дней подошли бы как минимум { $count } сохранённых постов (дальше я искать не стал), самые свежие:
    }
subscribe-preview-none = Ни один сохранённый пост за последние { $days } дней не подходит. Если такие должны быть, проверьте написание.
subscribe-preview-slow = Не успел просмотреть посты за последние { $days } дней; новые посты проверяться будут.
subscribe-preview-post = • { $source } — { $excerpt }

unsubscribe-usage = Какой запрос? Укажите его номер из /list или текст, например { $example }
unsubscribe-unknown = У вас нет запроса { $query }. /list покажет ваши запросы с номерами.
unsubscribe-closest =
    У вас нет запроса { $query }. Похожие сохранённые запросы:
    { $closest }
    Удалить запрос: /unsubscribe НОМЕР.
unsubscribe-done = 🗑 Подписка на { $query } отменена.
unsubscribe-channel-done = 🗑 Канал { $channel } отписан от { $query }.

list-empty = У вас пока нет сохранённых запросов. Попробуйте { $example }
list-channel-empty = У канала { $channel } пока нет сохранённых запросов.
list-title = <b>Ваши запросы</b> ({ $count ->
        [one] { $count } запрос
        [few] { $count } запроса
       *[many] { $count } запросов
    })
list-channel-title = <b>Запросы канала { $channel }</b> ({ $count ->
        [one] { $count } запрос
        [few] { $count } запроса
       *[many] { $count } запросов
    })
list-page = Страница { $page } из { $pages }
list-item =
    { $number }. { $query }
    { $paused ->
        [yes] ⏸ на паузе · { $mode }
       *[no] { $mode }
    }
list-mode-both = 🔔📰 сразу и в сводке
list-mode-instant = 🔔 только сразу
list-mode-digest = 📰 только в сводке
list-legend = Кнопки: ⏸ пауза или ▶️ продолжить · режим (нажмите, чтобы сменить 🔔📰 → 🔔 → 📰) · 🗑 удалить.

# Надписи на кнопках: коротко, на телефоне их три в ряд.
list-button-pause = ⏸ { $number }
list-button-resume = ▶️ { $number }
list-button-mode-both = 🔔📰 { $number }
list-button-mode-instant = 🔔 { $number }
list-button-mode-digest = 📰 { $number }
list-button-remove = 🗑 { $number }
list-button-previous = ◀
list-button-next = ▶

# Всплывающие ответы на нажатия: простой текст, не больше 200 символов, без HTML.
list-toast-paused = ⏸ На паузе: уведомлений по нему не будет, пока не продолжите.
list-toast-resumed = ▶️ Снова работает.
list-toast-removed = 🗑 Удалён.
list-toast-mode-both = 🔔📰 Сразу и в сводке.
list-toast-mode-instant = 🔔 Только сразу.
list-toast-mode-digest = 📰 Только в сводке.
list-toast-gone = Этот запрос уже удалён; список обновлён.
list-toast-changed = Список изменился; вот он сейчас.
list-toast-outdated = Эта кнопка больше не работает. Отправьте /list, чтобы получить свежий список.
list-toast-admins-only = Менять запросы группы могут только её администраторы.
list-toast-channel-admins-only = Менять запросы канала могут только его администраторы.

# Настройка канала из личного чата: /subscribe @канал ЗАПРОС.
channel-private-only = Настраивайте канал в личном чате со мной, например: /subscribe @канал ЗАПРОС.
channel-not-found = Не могу найти канал { $channel }. Проверьте название и добавьте меня в канал администратором.
channel-not-channel = { $channel } — не канал.
channel-bot-not-admin = Я не администратор канала { $channel }: добавьте меня туда администратором с правом публикации и попробуйте снова.
channel-user-not-admin = Менять запросы канала { $channel } могут только его администраторы.
