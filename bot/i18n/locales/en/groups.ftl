# Groups: the introduction when added, and refusals to members who are not administrators.
# $subscribe is an example command (already code), $presets and $help plain commands.

group-intro =
    👋 Hello! I'm <b>Dozor</b>. I watch Telegram channels, X accounts and news feeds about arms control and military affairs, and post here the moment a post matches this group's queries, plus a daily digest of everything that matched.

    Only this group's administrators can change its queries and settings; everyone can see them (/list) and search the stored posts.

    To start, an administrator sends { $subscribe } or picks ready-made topic bundles with { $presets }. { $help } explains the query syntax.
group-back = 👋 I'm back. { $count ->
        [0] This group has no saved queries yet: /presets offers ready-made bundles.
        [one] This group's { $count } saved query is active again.
       *[other] This group's { $count } saved queries are active again.
    }
group-admins-only = Only this group's administrators can change its queries and settings.
# A button's toast: plain text, at most 200 characters.
group-admins-only-toast = Only this group's administrators can change this.
