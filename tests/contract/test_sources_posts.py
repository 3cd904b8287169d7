"""Sources and posts behave alike on both engines: a post stored once with its matches and
alerts (edits alert only chats new to the post, queries gone or paused meanwhile count for
nothing), the sources' cursors and health, and word search."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain import MODE_DIGEST, MODE_INSTANT, Post, Span
from bot.redact import HIDDEN
from bot.storage import Storage
from bot.storage.records import RHYTHM_MIN_POSTS, MatchRecord

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TOKEN = "123456789:" + "A" * 35  # shaped like a bot token: never stored


def _post(post_id: str = "1", text: str = "Oreshnik launched", channel: str = "ch") -> Post:
    return Post("jsonl", channel, post_id, NOW, text, f"https://t.me/{channel}/{post_id}")


async def _subscribe(
    store: Storage,
    chat_id: int,
    query: str = "Oreshnik",
    *,
    spans: tuple[Span, ...] = (Span(0, 8),),
    mode: str | None = None,
) -> MatchRecord:
    await store.upsert_subscriber(chat_id, f"user {chat_id}")
    if mode is None:
        subscription = await store.add_subscription(chat_id, query)
    else:
        subscription = await store.add_subscription(chat_id, query, mode=mode)
    assert subscription is not None
    return MatchRecord(subscription.id, chat_id, query, spans)


def _later() -> datetime:
    """A moment every message queued so far is due by."""
    return datetime.now(UTC) + timedelta(days=1)


async def _alerts(store: Storage) -> dict[tuple[int, str], tuple[tuple[str, ...], list[Span]]]:
    """(chat, post id) → (queries, spans) of every alert waiting."""
    pending = await store.pending_messages(_later(), 1000)
    found = {}
    for message in pending:
        assert message.kind == "alert"
        assert message.post is not None
        key = (message.chat_id, message.post.post.post_id)
        found[key] = (message.queries, list(message.spans))
    return found


async def _matched(store: Storage, chat_id: int) -> dict[str, tuple[str, ...]]:
    """Post id → the queries matched for a chat (every mode), as /export reads them."""
    since = datetime.now(UTC) - timedelta(hours=1)
    entries = await store.matched_posts(chat_id, since, 100)
    return {entry.post.post.post_id: entry.queries for entry in entries}


# --- saving posts ------------------------------------------------------------------------


async def test_the_same_post_twice_is_stored_and_alerted_once(store: Storage) -> None:
    match = await _subscribe(store, 1)
    first = await store.save_post(_post(), [match])
    second = await store.save_post(_post(), [match])
    assert (first.created, first.changed, first.alerts_queued) == (True, True, 1)
    assert (second.post_id, second.created, second.changed) == (first.post_id, False, False)
    assert second.alerts_queued == 0
    assert await store.count_posts() == 1
    assert list(await _alerts(store)) == [(1, "1")]


async def test_a_post_saved_by_two_workers_at_once_is_stored_and_alerted_once(
    store: Storage,
) -> None:
    matches = [await _subscribe(store, chat) for chat in (1, 2, 3)]
    results = await asyncio.gather(*(store.save_post(_post(), matches) for _ in range(4)))
    assert len({result.post_id for result in results}) == 1
    assert sum(result.created for result in results) == 1
    assert sum(result.alerts_queued for result in results) == 3
    assert await store.count_posts() == 1
    assert sorted(await _alerts(store)) == [(1, "1"), (2, "1"), (3, "1")]


async def test_a_stored_post_reads_back_whole(store: Storage) -> None:
    post = Post(
        "telegram",
        "milinfolive",
        "5",
        datetime(2026, 11, 20, 9, 0, 0, 123456, tzinfo=UTC),
        "<b>x</b> '; DROP TABLE posts; -- 🚀 \u202e Орешник",
        "https://t.me/milinfolive/5",
        forwarded_from="militaryrussiaru",
        views=1200,
        media_count=3,
        channel_title="Military Informant",
    )
    saved = await store.save_post(post, [])
    stored = await store.get_post("telegram", "milinfolive", "5")
    assert stored is not None
    assert (stored.id, stored.post, stored.deleted) == (saved.post_id, post, False)
    assert await store.get_post("telegram", "milinfolive", "6") is None
    assert await store.get_post("telegram", "other", "5") is None


async def test_a_date_in_another_zone_is_the_same_moment(store: Storage) -> None:
    moscow = NOW.astimezone(ZoneInfo("Europe/Moscow"))
    await store.save_post(replace(_post(), date=moscow), [])
    stored = await store.get_post("jsonl", "ch", "1")
    assert stored is not None
    assert stored.post.date == NOW
    assert stored.post.date.utcoffset() == timedelta(0)


async def test_one_alert_per_chat_names_every_query_in_order(store: Storage) -> None:
    a = await _subscribe(store, 1, "Oreshnik", spans=(Span(0, 8),))
    b = await _subscribe(store, 1, "launched", spans=(Span(9, 17), Span(0, 8)))
    c = await _subscribe(store, 2, "Oreshnik", spans=(Span(0, 8),))
    result = await store.save_post(_post(), [b, a, c])
    assert result.alerts_queued == 2
    assert await _alerts(store) == {
        # The queries as matched; the spans once each, in order.
        (1, "1"): (("launched", "Oreshnik"), [Span(0, 8), Span(9, 17)]),
        (2, "1"): (("Oreshnik",), [Span(0, 8)]),
    }
    assert await _matched(store, 1) == {"1": ("Oreshnik", "launched")}


async def test_an_edit_alerts_only_chats_new_to_the_post(store: Storage) -> None:
    a = await _subscribe(store, 1, "Oreshnik")
    b = await _subscribe(store, 2, "Kapustin")
    first = await store.save_post(_post(text="Oreshnik launched"), [a])
    edited = replace(_post(text="Oreshnik launched at Kapustin Yar"), url=None)
    result = await store.save_post(edited, [a, b])
    assert (result.post_id, result.created, result.changed) == (first.post_id, False, True)
    assert result.alerts_queued == 1
    assert sorted(await _alerts(store)) == [(1, "1"), (2, "1")]
    stored = await store.get_post("jsonl", "ch", "1")
    assert stored is not None
    assert stored.post.edited
    assert stored.post.text == "Oreshnik launched at Kapustin Yar"
    assert stored.post.url == "https://t.me/ch/1"  # an edit without a link keeps the link
    # The same edit read again: nothing changes, nothing is matched again.
    again = await store.save_post(edited, [a, b])
    assert (again.changed, again.alerts_queued) == (False, 0)


async def test_an_edit_does_not_alert_a_chat_that_had_a_digest_only_match(
    store: Storage,
) -> None:
    quiet = await _subscribe(store, 1, "Oreshnik", mode=MODE_DIGEST)
    await store.save_post(_post(text="Oreshnik"), [quiet])
    loud = await _subscribe(store, 1, "launched")
    result = await store.save_post(_post(text="Oreshnik launched"), [quiet, loud])
    assert result.alerts_queued == 0
    assert await _alerts(store) == {}
    assert await _matched(store, 1) == {"1": ("Oreshnik", "launched")}


async def test_digest_only_queries_are_recorded_and_not_alerted(store: Storage) -> None:
    digest = await _subscribe(store, 1, "Oreshnik", mode=MODE_DIGEST)
    instant = await _subscribe(store, 2, "Oreshnik", mode=MODE_INSTANT)
    both = await _subscribe(store, 1, "launched")
    result = await store.save_post(_post(), [digest, instant, both])
    assert result.alerts_queued == 2
    alerts = await _alerts(store)
    assert alerts[(1, "1")][0] == ("launched",)  # the digest-only query is not named
    assert alerts[(2, "1")][0] == ("Oreshnik",)
    assert await _matched(store, 1) == {"1": ("Oreshnik", "launched")}


async def test_a_digest_only_hint_from_ingest_is_checked_against_the_query(
    store: Storage,
) -> None:
    # Ingest says which matched queries were digest-only (PostgreSQL prepares the alerts
    # from that); the stored query decides: its mode may have changed since it was matched.
    digest = await _subscribe(store, 1, "Oreshnik", mode=MODE_DIGEST)
    both = await _subscribe(store, 1, "launched")
    changed = await _subscribe(store, 2, "Oreshnik")  # matched as digest-only, now both
    result = await store.save_post(
        _post(), [replace(digest, digest_only=True), both, replace(changed, digest_only=True)]
    )
    assert result.alerts_queued == 2
    assert await _alerts(store) == {
        (1, "1"): (("launched",), [Span(0, 8)]),
        (2, "1"): (("Oreshnik",), [Span(0, 8)]),
    }
    hinted = await store.save_post(_post("2"), [replace(digest, digest_only=True)])
    assert hinted.alerts_queued == 0
    assert await _matched(store, 1) == {"1": ("Oreshnik", "launched"), "2": ("Oreshnik",)}


async def test_a_query_with_quotes_braces_and_backslashes_is_kept_as_written(
    store: Storage,
) -> None:
    odd = 'say "INF", \\ {9М729} NULL'
    match = await _subscribe(store, 1, odd)
    result = await store.save_post(_post(), [match])
    assert result.alerts_queued == 1
    assert await _alerts(store) == {(1, "1"): ((odd,), [Span(0, 8)])}
    assert await _matched(store, 1) == {"1": (odd,)}


async def test_a_query_removed_or_paused_meanwhile_counts_for_nothing(store: Storage) -> None:
    # Matching runs beside the bot: a query removed or paused after the post was matched
    # and before it was saved is neither recorded nor named in an alert.
    removed = await _subscribe(store, 1, "Oreshnik")
    paused = await _subscribe(store, 2, "Oreshnik")
    kept = await _subscribe(store, 2, "launched")
    await store.remove_subscription(removed.subscription_id)
    await store.update_subscription(paused.subscription_id, paused=True)
    result = await store.save_post(_post(), [removed, paused, kept])
    assert result.alerts_queued == 1
    assert await _alerts(store) == {(2, "1"): (("launched",), [Span(0, 8)])}
    assert await _matched(store, 1) == {}
    assert await _matched(store, 2) == {"1": ("launched",)}
    # Nothing left to alert: the post is stored all the same.
    only_removed = await store.save_post(_post("2"), [removed])
    assert (only_removed.created, only_removed.alerts_queued) == (True, 0)


async def test_a_match_for_a_moved_chat_goes_to_its_new_id(store: Storage) -> None:
    old = await _subscribe(store, -100)
    assert await store.move_chat(-100, -1001)
    # Matched before the move: the record still names the old chat.
    result = await store.save_post(_post(), [old])
    assert result.alerts_queued == 1
    assert list(await _alerts(store)) == [(-1001, "1")]
    assert await _matched(store, -1001) == {"1": ("Oreshnik",)}


async def test_a_chat_that_blocked_the_bot_keeps_its_matches_and_gets_no_alert(
    store: Storage,
) -> None:
    blocked = await _subscribe(store, 1)
    active = await _subscribe(store, 2)
    await store.deactivate_subscriber(1)
    result = await store.save_post(_post(), [blocked, active])
    assert result.alerts_queued == 1
    assert await store.upsert_subscriber(1, "back again")  # /start: nothing comes late
    assert list(await _alerts(store)) == [(2, "1")]
    assert await _matched(store, 1) == {"1": ("Oreshnik",)}


async def test_the_cursor_and_the_title_are_saved_with_the_post(store: Storage) -> None:
    source_id = await store.ensure_source("rss:https://www.google.com/alerts/feeds/1/2", "rss")
    post = replace(_post(), channel="google.com", channel_title="Google Alert - Oreshnik")
    await store.save_post(post, [], source_id=source_id, cursor="42")
    assert await store.get_cursor(source_id) == "42"
    (info,) = await store.list_sources()
    assert info.title == "Google Alert - Oreshnik"
    # Without a cursor or a name, the ones known stay; a renamed feed shows its new name.
    await store.save_post(replace(post, post_id="2", channel_title=None), [], source_id=source_id)
    assert await store.get_cursor(source_id) == "42"
    assert (await store.list_sources())[0].title == "Google Alert - Oreshnik"
    renamed = replace(post, channel_title="Google Alert - Орешник")
    await store.save_post(renamed, [], source_id=source_id, cursor="43")
    stored = await store.get_post("jsonl", "google.com", "1")
    assert stored is not None
    assert stored.post.channel_title == "Google Alert - Орешник"
    assert (await store.list_sources())[0].title == "Google Alert - Орешник"
    assert await store.get_cursor(source_id) == "43"


async def test_a_failed_save_leaves_nothing(store: Storage) -> None:
    source_id = await store.ensure_source("jsonl:/x", "jsonl")
    await store.save_post(_post("2"), [], source_id=source_id, cursor="1")
    broken = Post("jsonl", "ch", "3", "not a date", "x", None)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        await store.save_post(broken, [], source_id=source_id, cursor="2")
    assert await store.get_cursor(source_id) == "1"
    assert await store.get_post("jsonl", "ch", "3") is None
    assert await store.count_posts() == 1


async def test_views_update_quietly_and_a_deleted_post_stays_marked(store: Storage) -> None:
    match = await _subscribe(store, 1)
    post = Post(
        "telegram",
        "milinfolive",
        "5",
        NOW,
        "Oreshnik",
        "https://t.me/milinfolive/5",
        forwarded_from="militaryrussiaru",
        views=1200,
        media_count=3,
    )
    await store.save_post(post, [match])
    again = await store.save_post(
        replace(post, views=2500, media_count=1, forwarded_from=None), [match]
    )
    assert (again.changed, again.alerts_queued) == (False, 0)
    unknown_views = await store.save_post(replace(post, views=None), [match])
    assert not unknown_views.changed
    assert await store.mark_deleted("telegram", "milinfolive", "5")
    assert not await store.mark_deleted("telegram", "milinfolive", "5")  # already marked
    assert not await store.mark_deleted("telegram", "milinfolive", "404")
    stored = await store.get_post("telegram", "milinfolive", "5")
    assert stored is not None
    assert stored.deleted
    assert not stored.post.edited
    assert (stored.post.views, stored.post.media_count) == (2500, 3)
    assert stored.post.forwarded_from == "militaryrussiaru"
    assert len(await _alerts(store)) == 1


# --- reading posts -----------------------------------------------------------------------


async def test_posts_by_ids_keeps_the_order_given(store: Storage) -> None:
    ids = [(await store.save_post(_post(str(n)), [])).post_id for n in range(3)]
    wanted = [ids[2], 999_999, ids[0], ids[2]]
    assert [p.post.post_id for p in await store.posts_by_ids(wanted)] == ["2", "0", "2"]
    assert await store.posts_by_ids([]) == []


async def test_recent_posts_are_newest_first_and_page(store: Storage) -> None:
    for number, hours in enumerate([3, 1, 2, 1]):
        post = replace(_post(str(number)), date=NOW - timedelta(hours=hours))
        await store.save_post(post, [])
    assert await store.count_posts() == 4
    # The same date: the later stored first.
    newest = [p.post.post_id for p in await store.recent_posts(10)]
    assert newest == ["3", "1", "2", "0"]
    assert [p.post.post_id for p in await store.recent_posts(2, offset=1)] == ["1", "2"]
    assert await store.recent_posts(10, offset=4) == []


# --- search ------------------------------------------------------------------------------


async def _search(store: Storage, *words: str) -> list[str]:
    return [found.post.post_id for found in await store.search_posts(list(words))]


async def _corpus(store: Storage) -> None:
    texts = [
        "Искандер-М на учениях",
        "Weather today: sunny",
        "ОРЕШНИК запущен с полигона Капустин Яр",
        "Oreshnik launched from Kapustin Yar",
        "Un café à l'École militaire",
        "«Орешник» — новый комплекс",
    ]
    for number, text in enumerate(texts):
        post = replace(_post(str(number), text), date=NOW + timedelta(minutes=number))
        await store.save_post(post, [])


async def test_search_finds_whole_words_in_any_case(store: Storage) -> None:
    await _corpus(store)
    assert await _search(store, "искандер") == ["0"]
    assert await _search(store, "орешник") == ["5", "2"]  # newest first
    assert await _search(store, "ОрЕшНиК") == ["5", "2"]
    assert await _search(store, "KAPUSTIN") == ["3"]
    assert await _search(store, "Капустин") == ["2"]
    assert await _search(store, "weather") == ["1"]
    assert await _search(store, "орешни") == []  # a word, not a prefix
    assert await _search(store, "launch") == []


async def test_search_needs_every_word(store: Storage) -> None:
    await _corpus(store)
    assert await _search(store, "kapustin", "yar") == ["3"]
    assert await _search(store, "Орешник", "полигона") == ["2"]
    assert await _search(store, "орешник", "kapustin") == []
    assert await _search(store, "oreshnik", "nowhere") == []
    assert await _search(store, "nowhere") == []


async def test_search_splits_and_folds_words_as_fts5_does(store: Storage) -> None:
    await _corpus(store)
    assert await _search(store, "Искандер-М") == ["0"]  # the words, next to each other
    assert await _search(store, "м", "искандер") == ["0"]
    assert await _search(store, "cafe") == ["4"]  # diacritics of Latin letters dropped
    assert await _search(store, "ecole", "CAFÉ") == ["4"]
    assert await _search(store, "today:") == ["1"]  # punctuation separates words
    assert await _search(store, "sunny", "!!!") == ["1"]  # a word with no letters: ignored


async def test_search_input_is_words_never_syntax(store: Storage) -> None:
    await _corpus(store)
    assert await _search(store, '" OR *', "NEAR(") == []
    assert await _search(store, "') OR 1=1 --") == []
    assert await _search(store) == []
    assert await _search(store, " ", "") == []


async def test_search_returns_at_most_the_limit_newest_first(store: Storage) -> None:
    for number in range(5):
        post = replace(
            _post(str(number), f"Oreshnik {number}"), date=NOW + timedelta(hours=number)
        )
        await store.save_post(post, [])
    found = await store.search_posts(["oreshnik"], limit=2)
    assert [p.post.post_id for p in found] == ["4", "3"]


async def test_search_sees_an_edit(store: Storage) -> None:
    await store.save_post(_post("1", "Oreshnik launched"), [])
    await store.save_post(_post("1", "Kapustin Yar"), [])
    assert await _search(store, "oreshnik") == []
    assert await _search(store, "yar") == ["1"]


# --- sources -----------------------------------------------------------------------------


async def test_ensure_source_adds_once_and_keeps_the_state(store: Storage) -> None:
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    source_id = await store.ensure_source("jsonl:/x", "jsonl", added_at=long_ago)
    await store.set_cursor(source_id, "7")
    again = await store.ensure_source("jsonl:/x", "jsonl", origin="chat", added_at=NOW)
    assert again == source_id
    assert await store.source_added_at(source_id) == long_ago
    assert await store.get_cursor(source_id) == "7"
    (info,) = await store.list_sources()
    assert (info.spec, info.kind, info.origin, info.enabled) == (
        "jsonl:/x",
        "jsonl",
        "config",
        True,
    )
    assert await store.source_added_at(source_id + 100) is None
    assert await store.get_cursor(source_id + 100) is None
    other = await store.ensure_source("tgweb:milinfolive", "tgweb")
    assert other != source_id
    added = await store.source_added_at(other)
    assert added is not None
    assert abs(added - datetime.now(UTC)) < timedelta(minutes=5)


async def test_sources_are_added_and_removed_whatever_the_case(store: Storage) -> None:
    assert await store.add_source("tgweb:milinfolive", "tgweb", origin="chat")
    assert not await store.add_source("tgweb:MilInfoLive", "tgweb", origin="chat")
    assert await store.remove_source("TGWEB:milinfolive")
    assert not await store.remove_source("tgweb:milinfolive")  # not watched now
    assert not await store.remove_source("tgweb:unknown")
    assert await store.list_sources() == []
    (hidden,) = await store.list_sources(enabled_only=False)
    assert (hidden.spec, hidden.enabled) == ("tgweb:milinfolive", False)
    assert await store.add_source("tgweb:MILINFOLIVE", "tgweb", origin="config")
    (back,) = await store.list_sources()
    assert (back.spec, back.enabled, back.origin) == ("tgweb:milinfolive", True, "config")


async def test_a_removed_source_added_again_is_watched_from_then(store: Storage) -> None:
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    source_id = await store.ensure_source("tgweb:milinfolive", "tgweb", added_at=long_ago)
    await store.set_cursor(source_id, "99")
    await store.record_source_error(source_id, "NoPreviewError: none", stopped=True)
    assert await store.remove_source("tgweb:milinfolive")
    assert await store.add_source("tgweb:milinfolive", "tgweb", origin="chat")
    added = await store.source_added_at(source_id)
    assert added is not None
    assert added > long_ago
    assert await store.get_cursor(source_id) == "99"  # its posts and cursor stayed
    (info,) = await store.list_sources()
    assert (info.id, info.origin) == (source_id, "chat")
    assert (info.stopped_at, info.failing_since, info.failures) == (None, None, 0)


async def test_a_source_that_works_again_is_no_longer_failing(store: Storage) -> None:
    source_id = await store.ensure_source("tgweb:milinfolive", "tgweb")
    (fresh,) = await store.list_sources()
    assert (fresh.failures, fresh.last_ok_at, fresh.last_error, fresh.failing_since) == (
        0,
        None,
        None,
        None,
    )
    for _ in range(3):
        await store.record_source_error(source_id, "FetchError: 502")
    (info,) = await store.list_sources()
    assert info.failures == 3
    assert info.failing_since is not None
    assert info.last_error_at is not None
    assert info.failing_since <= info.last_error_at
    assert info.stopped_at is None
    await store.record_source_ok(source_id)
    (info,) = await store.list_sources()
    assert (info.failures, info.failing_since, info.stopped_at) == (0, None, None)
    assert info.last_ok_at is not None
    assert info.last_error == "FetchError: 502"  # still shown, as the last error seen


async def test_a_stopped_source_stays_stopped_until_a_read_succeeds(store: Storage) -> None:
    source_id = await store.ensure_source("x:@SokovNikolai", "x")
    await store.record_source_error(source_id, "XAuthError: HTTP 401", stopped=True)
    (first,) = await store.list_sources()
    assert first.stopped_at is not None
    await store.record_source_error(source_id, "XAuthError: HTTP 401", stopped=True)
    (again,) = await store.list_sources()
    assert again.stopped_at == first.stopped_at
    assert again.failing_since == first.failing_since
    await store.record_source_error(source_id, "FetchError: timeout")
    (flaky,) = await store.list_sources()
    assert (flaky.stopped_at, flaky.failures) == (first.stopped_at, 3)
    await store.record_source_ok(source_id)
    (healthy,) = await store.list_sources()
    assert (healthy.stopped_at, healthy.failures) == (None, 0)


async def test_an_error_is_stored_redacted_and_cut(store: Storage) -> None:
    source_id = await store.ensure_source("x:@SokovNikolai", "x")
    await store.record_source_error(source_id, f"token {TOKEN} refused " + "x" * 600)
    (info,) = await store.list_sources()
    assert info.last_error is not None
    assert TOKEN not in info.last_error
    assert HIDDEN in info.last_error
    assert len(info.last_error) == 500


async def test_a_cursor_written_mid_read_says_nothing_about_health(store: Storage) -> None:
    source_id = await store.ensure_source("x:@SokovNikolai", "x")
    await store.record_source_error(source_id, "XApiError: HTTP 500")
    await store.set_cursor(source_id, '{"user_id": "1"}')
    await store.save_post(_post("1"), [], source_id=source_id, cursor='{"user_id": "2"}')
    (info,) = await store.list_sources()
    assert (info.failures, info.last_ok_at) == (1, None)
    assert await store.get_cursor(source_id) == '{"user_id": "2"}'


async def test_list_sources_tells_what_each_source_brought(store: Storage) -> None:
    busy = await store.ensure_source("jsonl:/busy", "jsonl")
    quiet = await store.ensure_source("jsonl:/quiet", "jsonl")
    assert [info.usual_gap for info in await store.list_sources()] == [None, None]
    for number in range(RHYTHM_MIN_POSTS):  # not enough to tell its rhythm yet
        await store.save_post(_post(f"b{number}"), [], source_id=busy)
    await store.save_post(_post("q1"), [], source_id=quiet)
    await store.save_post(_post("loose"), [])  # no source
    first, second = await store.list_sources()
    assert (first.id, first.posts_24h, first.usual_gap) == (busy, RHYTHM_MIN_POSTS, None)
    assert (second.id, second.posts_24h, second.usual_gap) == (quiet, 1, None)
    assert first.last_post_at is not None
    assert second.last_post_at is not None
    assert second.last_post_at >= first.last_post_at
    assert abs(second.last_post_at - datetime.now(UTC)) < timedelta(minutes=5)
    await store.save_post(_post(f"b{RHYTHM_MIN_POSTS}"), [], source_id=busy)
    gap = (await store.list_sources())[0].usual_gap
    assert gap is not None
    assert timedelta(0) <= gap < timedelta(minutes=1)  # stored moments apart
