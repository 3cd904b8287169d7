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
