unknown-command = Я не знаю команды { $command }. /help — список команд.
commands-only = Я понимаю только команды. /help — их список.
