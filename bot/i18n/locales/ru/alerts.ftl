# Оформление мгновенных оповещений (bot/delivery/render.py). Аргументы экранирует
# вызывающий код; сами тексты вставляются в HTML Telegram как есть.

# Над несколькими оповещениями, отправленными одним сообщением.
alert-title = 🔔 { $count ->
        [one] { $count } новое совпадение
        [few] { $count } новых совпадения
       *[many] { $count } новых совпадений
    }
alert-forwarded = переслано из { $source }
alert-media = { $count } фото/видео
alert-edited = изменён
alert-deleted = удалён
alert-open = Открыть исходный пост
# Другие источники с тем же сюжетом: «также в Рыбарь, @milinfolive, +3».
also-in = также в { $names }{ $more ->
        [0] {""}
       *[other] , +{ $more }
    }
also-similar = { $count ->
        [one] ещё { $count } похожий пост
        [few] ещё { $count } похожих поста
       *[many] ещё { $count } похожих постов
    }
