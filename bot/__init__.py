"""Dozor: watches sources, matches posts against saved queries, alerts through a Telegram bot."""
