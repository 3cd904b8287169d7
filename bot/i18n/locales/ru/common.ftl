# Тексты, общие для нескольких команд. Аргументы экранирует вызывающий код.

example-query = Орешник OR "Договор РСМД" -лещина
query-invalid =
    ⚠️ Не могу разобрать запрос: { $error }.
    Пример правильного запроса: { $example }
handler-failed = ⚠️ Что-то пошло не так при обработке сообщения, ошибка записана в журнал (обновление { $update }). Попробуйте через минуту; /help — список команд.
slow-down = ⏳ Не так быстро — я пропустил часть ваших сообщений; повторите команду через несколько секунд.
more-items = … и ещё { $count }

query-error-at = { $error } (символ { $position })
query-error-open-quote = кавычка открыта, но не закрыта
query-error-open-regex = /регулярное выражение/ открыто, но не закрыто
query-error-unmatched-close = у скобки ) нет пары (
query-error-or-after = после OR нужно то, что искать
query-error-or-before = перед OR нужно то, что искать
query-error-and-sides = у AND с обеих сторон нужно то, что искать
query-error-ends-early = запрос обрывается там, где ожидалось слово
query-error-empty-group = в скобках ( ) нечего искать
query-error-not-after = после { $operator } нужно слово, которое исключить
query-error-too-deep = скобки вложены глубже { $limit } уровней
query-error-open-bracket = скобка ( не закрыта
query-error-empty-quotes = в кавычках нет ни букв, ни цифр
query-error-too-many-terms = в запросе больше { $limit } слов
query-error-too-many-regexes = в запросе может быть не больше { $limit } /регулярных выражений/
query-error-star-inside = * может стоять только в конце слова (слово*)
query-error-no-letters = в { $term } нет ни букв, ни цифр
query-error-exact-and-prefix = используйте либо =слово, либо слово*, но не оба сразу
query-error-prefix-compound = слово* — только для одного слова, не для составного
query-error-prefix-short = перед * нужно хотя бы { $limit } буквы
query-error-regex-empty = /регулярное выражение/ пустое
query-error-regex-bytes = \C (любой байт) в /регулярном выражении/ не допускается
query-error-regex-long = /регулярное выражение/ может быть не длиннее { $limit } символов
query-error-regex-invalid = /регулярное выражение/ некорректно: { $reason }
query-error-regex-complex = /регулярное выражение/ слишком сложное, чтобы проверять его на каждом посте (размер { $size }, допустимо до { $limit }); используйте меньше повторений или повторения поменьше, например {"{"}n{"}"}
query-error-empty = запрос пуст
query-error-too-long = запрос длиннее { $limit } символов
query-error-only-excludes = запрос только исключает; добавьте то, что искать, например: Орешник -лещина

alarm-cannot-record = ⚠️ «Дозор»: не удаётся записать отправленные сообщения в базу ({ $error }); отправка приостановлена, пока запись не заработает (не кончилось ли место на диске?)
alarm-sending-resumed = ✅ «Дозор»: отправка возобновлена; { $count ->
        [one] записано { $count } отправленное сообщение
        [few] записано { $count } отправленных сообщения
       *[many] записано { $count } отправленных сообщений
    }
alarm-source-stopped = ⚠️ Источник { $source } остановлен: { $problem }

# Почему движок регулярных выражений (RE2) не принял /regex/; затем, кодом, — о какой части речь.
regex-reason-escape = неизвестная экранирующая последовательность
regex-reason-class-range = неверный диапазон или класс символов
regex-reason-class = неверный класс символов
regex-reason-missing-bracket = скобка [ не закрыта
regex-reason-missing-paren = скобка ( не закрыта
regex-reason-unexpected-paren = у скобки ) нет пары (
regex-reason-trailing-backslash = в конце стоит одинокий \
regex-reason-no-repeat-argument = оператору повторения нечего повторять
regex-reason-repeat-size = неверное число повторений (не больше 1000)
regex-reason-bad-repeat = операторы повторения подряд
regex-reason-perl-operator = неподдерживаемая группа (?
regex-reason-utf8 = недопустимые символы
regex-reason-named-group = неверная именованная группа
