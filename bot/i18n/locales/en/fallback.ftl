unknown-command = I don't know the command { $command }. /help lists what I can do.
commands-only = I understand commands only. /help lists them.
