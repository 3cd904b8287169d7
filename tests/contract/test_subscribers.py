"""Subscribers and their queries behave alike on both engines: who is subscribed, with which
settings, which queries, and a group that became a supergroup moved whole."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain import MODE_BOTH, MODE_DIGEST, MODE_INSTANT, Post, Span, Subscription
from bot.storage import Storage, TooManySubscriptions
from bot.storage.records import MatchRecord

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


# --- subscribers ------------------------------------------------------------------------


async def test_a_new_subscriber_has_the_defaults(store: Storage) -> None:
    before = datetime.now(UTC)
    made = await store.upsert_subscriber(1, "reader", tg_language="ru")
    assert (made.chat_id, made.name, made.active, made.kind) == (1, "reader", True, "private")
    assert made.tg_language == "ru"
    assert made.language is None
    assert made.digest_enabled
    assert made.digest_chart
    assert not made.link_previews
    assert not made.digest_quiet_days
    assert made.next_digest_at is None
    assert made.last_digest_at is None
    assert before - timedelta(seconds=5) <= made.created_at <= datetime.now(UTC)
    assert await store.get_subscriber(1) == made
    assert await store.get_subscriber(2) is None


async def test_upsert_renames_reactivates_and_keeps_the_language(store: Storage) -> None:
    first = await store.upsert_subscriber(1, "reader", tg_language="ru")
    await store.deactivate_subscriber(1)
    blocked = await store.get_subscriber(1)
    assert blocked is not None
    assert not blocked.active
    again = await store.upsert_subscriber(1, "x" * 300, kind="group")
    assert again.active
    assert again.name == "x" * 200  # names are cut to 200 characters
    assert again.kind == "group"
    assert again.tg_language == "ru"  # not given: the one known stays
    assert again.created_at == first.created_at
    assert (await store.upsert_subscriber(1, "y", tg_language="en")).tg_language == "en"


# --- subscriptions ----------------------------------------------------------------------


async def test_subscriptions_are_unique_per_chat_and_kept_in_order(store: Storage) -> None:
    await store.upsert_subscriber(1, "a")
    await store.upsert_subscriber(2, "b")
    first = await store.add_subscription(1, "Oreshnik")
    assert first is not None
    assert (first.chat_id, first.query, first.mode, first.paused, first.preset) == (
        1,
        "Oreshnik",
        MODE_BOTH,
        False,
        None,
    )
    assert await store.add_subscription(1, "Oreshnik") is None  # exactly this query: None
    other = await store.add_subscription(2, "Oreshnik")  # another chat may have it
    digest = await store.add_subscription(1, "Iskander", mode=MODE_DIGEST, preset="missiles")
    assert other is not None
    assert digest is not None
    assert (digest.mode, digest.preset) == (MODE_DIGEST, "missiles")
    assert digest.id > first.id
    assert await store.subscriptions_of(1) == [first, digest]
    assert await store.subscriptions_of(2) == [other]
    assert await store.subscriptions_of(3) == []


async def test_the_query_limit_refuses_with_the_count(store: Storage) -> None:
    await store.upsert_subscriber(1, "a")
    for n in range(3):
        assert await store.add_subscription(1, f"q{n}", limit=3) is not None
    with pytest.raises(TooManySubscriptions) as refused:
        await store.add_subscription(1, "q3", limit=3)
    assert refused.value.count == 3
    # A duplicate at the limit is still "already subscribed", not "too many".
    assert await store.add_subscription(1, "q0", limit=3) is None
    assert [s.query for s in await store.subscriptions_of(1)] == ["q0", "q1", "q2"]
    # Without a limit (or under it) the chat may go on.
    assert await store.add_subscription(1, "q3") is not None
    assert await store.add_subscription(1, "q4", limit=6) is not None


async def test_the_query_limit_holds_against_concurrent_subscribes(store: Storage) -> None:
    await store.upsert_subscriber(1, "reader")
    results = await asyncio.gather(
        *(store.add_subscription(1, f"q{n}", limit=10) for n in range(40)),
        return_exceptions=True,
    )
    assert len(await store.subscriptions_of(1)) == 10
    assert len([r for r in results if isinstance(r, TooManySubscriptions)]) == 30
    assert all(isinstance(r, Subscription | TooManySubscriptions) for r in results)


async def test_note_language_only_for_a_chat_that_exists(store: Storage) -> None:
    await store.upsert_subscriber(1, "reader")
    await store.note_language(1, "uk-UA-with-a-very-long-tag")
    await store.note_language(2, "en")  # no such chat: nothing is created
    subscriber = await store.get_subscriber(1)
    assert subscriber is not None
    assert subscriber.tg_language == "uk-UA-with-a-ver"  # cut to 16 characters
    assert await store.get_subscriber(2) is None


async def test_settings_round_trip_in_their_types(store: Storage) -> None:
    await store.upsert_subscriber(1, "reader")
    muted = datetime(2026, 11, 21, 6, 30, 15, 123456, tzinfo=UTC)
    changed = await store.update_subscriber(
        1,
        language="ru",
        timezone="Europe/Moscow",
        digest_time="07:30",
        digest_enabled=False,
        muted_until=muted,
        quiet_start="23:00",
        quiet_end="07:00",
        link_previews=True,
        introduced_at=NOW,
        digest_quiet_days=True,
        digest_chart=False,
    )
    assert changed is not None
    assert changed == await store.get_subscriber(1)
    assert (changed.language, changed.timezone, changed.digest_time) == (
        "ru",
        "Europe/Moscow",
        "07:30",
    )
    assert (changed.quiet_start, changed.quiet_end) == ("23:00", "07:00")
    assert changed.muted_until == muted
    assert changed.introduced_at == NOW
    flags = (
        changed.digest_enabled,
        changed.link_previews,
        changed.digest_quiet_days,
        changed.digest_chart,
    )
    assert flags == (False, True, True, False)
    # Back again, and a setting cleared.
    again = await store.update_subscriber(1, digest_enabled=True, muted_until=None)
    assert again is not None
    assert again.digest_enabled
    assert again.muted_until is None
    assert again.link_previews  # untouched
    # Nothing to change: the subscriber as it is.
    assert await store.update_subscriber(1) == again


async def test_update_subscriber_refuses_what_is_not_a_setting(store: Storage) -> None:
    await store.upsert_subscriber(1, "reader")
    for name in ("active", "name", "next_digest_at", "kind", "nonsense"):
        with pytest.raises(ValueError, match=name):
            await store.update_subscriber(1, **{name: "x"})
    assert await store.update_subscriber(2, language="en") is None  # no such chat
    assert await store.get_subscriber(2) is None


async def test_a_digest_setting_has_the_due_time_worked_out_again(store: Storage) -> None:
    for chat_id in (1, 2, 3, 4):
        await store.upsert_subscriber(chat_id, f"chat {chat_id}")
    due = NOW + timedelta(hours=3)
    await store.schedule_digests([(chat_id, due) for chat_id in (1, 2, 3, 4)])
    # Other settings leave the due time alone.
    kept = await store.update_subscriber(1, link_previews=True, digest_chart=False)
    assert kept is not None
    assert kept.next_digest_at == due
    for chat_id, setting in ((2, {"timezone": "Europe/Moscow"}), (3, {"digest_time": "20:00"})):
        changed = await store.update_subscriber(chat_id, **setting)
        assert changed is not None
        assert changed.next_digest_at is None
    off = await store.update_subscriber(4, digest_enabled=False, language="en")
    assert off is not None
    assert off.next_digest_at is None
    # Not worked out: due for a digest job at once.
    due_now = await store.due_for_digest(NOW, 10)
    assert [s.chat_id for s in due_now] == [2, 3, 4]


async def test_a_blocked_chat_keeps_its_queries_but_is_not_active(store: Storage) -> None:
    for chat_id in (3, 1, 2):
        await store.upsert_subscriber(chat_id, f"chat {chat_id}")
    first = await store.add_subscription(1, "Oreshnik")
    second = await store.add_subscription(2, "Iskander")
    third = await store.add_subscription(3, "Kinzhal")
    assert first is not None
    assert second is not None
    assert third is not None
    assert [s.chat_id for s in await store.active_subscribers()] == [1, 2, 3]
    assert await store.active_subscriptions() == [first, second, third]

    await store.deactivate_subscriber(2)
    await store.deactivate_subscriber(99)  # unknown: nothing happens
    blocked = await store.get_subscriber(2)
    assert blocked is not None
    assert not blocked.active
    assert [s.chat_id for s in await store.active_subscribers()] == [1, 3]
    assert await store.active_subscriptions() == [first, third]
    assert await store.subscriptions_of(2) == [second]

    back = await store.upsert_subscriber(2, "back again")  # /start reactivates
    assert back.active
    assert await store.active_subscriptions() == [first, second, third]


async def test_a_query_is_changed_paused_and_removed(store: Storage) -> None:
    await store.upsert_subscriber(1, "reader")
    query = await store.add_subscription(1, "Oreshnik")
    other = await store.add_subscription(1, "Iskander")
    assert query is not None
    assert other is not None
    assert await store.get_subscription(query.id) == query

    digest = await store.update_subscription(query.id, mode=MODE_DIGEST)
    assert digest is not None
    assert (digest.mode, digest.paused) == (MODE_DIGEST, False)
    paused = await store.update_subscription(query.id, paused=True)
    assert paused is not None
    assert (paused.mode, paused.paused) == (MODE_DIGEST, True)
    assert await store.active_subscriptions() == [other]  # a paused query is not indexed
    both = await store.update_subscription(query.id, mode=MODE_INSTANT, paused=False)
    assert both is not None
    assert (both.mode, both.paused) == (MODE_INSTANT, False)
    assert await store.update_subscription(query.id) == both  # nothing to change
    assert await store.get_subscription(query.id) == both
    with pytest.raises(ValueError, match="unknown mode"):
        await store.update_subscription(query.id, mode="sometimes")
    assert await store.get_subscription(query.id) == both

    await store.remove_subscription(query.id)
    await store.remove_subscription(query.id)  # again: nothing happens
    assert await store.get_subscription(query.id) is None
    assert await store.update_subscription(query.id, paused=True) is None
    assert await store.subscriptions_of(1) == [other]
    # Removed, the same query may be saved again.
    assert await store.add_subscription(1, "Oreshnik") is not None


async def test_a_preset_is_removed_whole_and_only_for_its_chat(store: Storage) -> None:
    for chat_id in (1, 2):
        await store.upsert_subscriber(chat_id, f"chat {chat_id}")
    own = await store.add_subscription(1, "Sarmat")
    first = await store.add_subscription(1, "Oreshnik", preset="missiles")
    second = await store.add_subscription(1, "Iskander", preset="missiles")
    drones = await store.add_subscription(1, "Shahed", preset="drones")
    theirs = await store.add_subscription(2, "Oreshnik", preset="missiles")
    assert await store.remove_preset(1, "missiles") == [first, second]
    assert await store.subscriptions_of(1) == [own, drones]
    assert await store.subscriptions_of(2) == [theirs]
    assert await store.remove_preset(1, "missiles") == []
    assert await store.remove_preset(1, "no such preset") == []


# --- what /stats shows ------------------------------------------------------------------


def _post(post_id: str, text: str = "Oreshnik launched") -> Post:
    return Post("jsonl", "milinfo", post_id, NOW, text, f"https://t.me/milinfo/{post_id}")


async def _subscribe(store: Storage, chat_id: int, query: str, **options: Any) -> MatchRecord:
    subscription = await store.add_subscription(chat_id, query, **options)
    assert subscription is not None
    return MatchRecord(subscription.id, chat_id, query, (Span(0, len(query)),))


async def test_service_counts(store: Storage) -> None:
    today = datetime.now(UTC)
    keys = ("subscribers", "active", "queries", "paused", "alerts", "pending")
    assert await store.service_counts(today) == dict.fromkeys(keys, 0)
    for chat_id in (1, 2, 3):
        await store.upsert_subscriber(chat_id, f"chat {chat_id}")
    one = await _subscribe(store, 1, "Oreshnik")
    two = await _subscribe(store, 2, "Oreshnik")
    paused = await _subscribe(store, 3, "Iskander")
    await store.update_subscription(paused.subscription_id, paused=True)
    await store.save_post(_post("1"), [one, two])
    counts = {"subscribers": 3, "active": 3, "queries": 3, "paused": 1, "alerts": 0}
    assert await store.service_counts(today) == {**counts, "pending": 2}  # not filed yet
    await store.deactivate_subscriber(2)  # its waiting alert is not the sender's to do
    counts["active"] = 2
    assert await store.service_counts(today) == {**counts, "pending": 1}
    await store.file_alerts()
    assert await store.service_counts(today) == {**counts, "pending": 1}
    (alert,) = await store.pending_messages(datetime.now(UTC) + timedelta(seconds=1))
    await store.mark_sent(alert.id)
    assert await store.service_counts(today) == {**counts, "alerts": 1, "pending": 0}
    # Alerts are counted from the UTC day of `since`.
    assert (await store.service_counts(today - timedelta(days=3)))["alerts"] == 1
    assert (await store.service_counts(today + timedelta(days=2)))["alerts"] == 0


# --- a group that became a supergroup ---------------------------------------------------

OLD = -4_500_100  # a basic group ...
NEW = -1_004_500_100  # ... and the supergroup it became


async def _group(store: Storage, chat_id: int = OLD) -> None:
    await store.upsert_subscriber(chat_id, "Arms Control Desk", kind="group", tg_language="ru")


async def test_the_chat_moves_whole_and_only_once(store: Storage) -> None:
    await _group(store)
    await store.update_subscriber(
        OLD,
        language="ru",
        timezone="Europe/Moscow",
        digest_time="07:30",
        digest_enabled=False,
        quiet_start="23:00",
        quiet_end="07:00",
        link_previews=True,
        introduced_at=NOW,
        digest_quiet_days=True,
        digest_chart=False,
    )
    oreshnik = await _subscribe(store, OLD, "Oreshnik")
    iskander = await _subscribe(store, OLD, "Iskander", mode=MODE_DIGEST)
    kinzhal = await _subscribe(store, OLD, "Kinzhal", preset="missiles")
    await store.update_subscription(kinzhal.subscription_id, paused=True)
    await store.save_post(_post("1"), [oreshnik])
    await store.save_post(_post("2", "Iskander and Oreshnik"), [oreshnik, iskander])
    (first, second) = await store.pending_messages(datetime.now(UTC) + timedelta(seconds=1))
    await store.mark_sent(first.id)  # history: stays the old chat's
    await store.postpone(second.id, datetime.now(UTC), "a hiccup")  # one attempt counted
    await store.queue_digest(OLD, ["<b>Digest</b>"], NOW)
    before = await store.get_subscriber(OLD)
    assert before is not None
    assert before.last_digest_at == NOW

    assert await store.move_chat(OLD, NEW)

    assert await store.get_subscriber(OLD) is None
    assert await store.subscriptions_of(OLD) == []
    after = await store.get_subscriber(NEW)
    assert after is not None
    assert after.kind == "supergroup"
    assert after == replace(before, chat_id=NEW, kind="supergroup")
    moved = await store.subscriptions_of(NEW)
    assert [(s.id, s.query, s.mode, s.paused, s.preset) for s in moved] == [
        (oreshnik.subscription_id, "Oreshnik", "both", False, None),
        (iskander.subscription_id, "Iskander", MODE_DIGEST, False, None),
        (kinzhal.subscription_id, "Kinzhal", "both", True, "missiles"),
    ]
    assert {s.chat_id for s in await store.active_subscriptions()} == {NEW}
    entries = await store.digest_entries(NEW, NOW - timedelta(days=1), datetime.now(UTC))
    assert [(e.post.post.post_id, e.queries) for e in entries] == [
        ("1", ("Oreshnik",)),
        ("2", ("Oreshnik", "Iskander")),
    ]
    assert await store.digest_entries(OLD, NOW - timedelta(days=1), datetime.now(UTC)) == []
    waiting = await store.pending_messages(datetime.now(UTC) + timedelta(hours=1))
    assert [(m.id, m.kind, m.chat_id, m.attempts) for m in waiting] == [
        (second.id, "alert", NEW, 1),
        (second.id + 1, "digest", NEW, 0),
    ]
    counts = {"pending": 2, "sent": 1, "failed": 0}
    assert await store.outbox_counts() == counts

    # Again, or a chat never seen: nothing to move, nothing changes.
    assert not await store.move_chat(OLD, NEW)
    assert not await store.move_chat(-77, NEW)
    assert not await store.move_chat(NEW, NEW)
    assert await store.get_subscriber(NEW) == after
    assert await store.subscriptions_of(NEW) == moved
    assert await store.outbox_counts() == counts


async def test_into_a_supergroup_already_known_nothing_is_doubled(store: Storage) -> None:
    await _group(store)
    await store.update_subscriber(OLD, language="ru", timezone="Europe/Moscow")
    await store.deactivate_subscriber(OLD)  # its own state, not the supergroup's
    old_oreshnik = await _subscribe(store, OLD, "Oreshnik")
    old_iskander = await _subscribe(store, OLD, "Iskander")
    await store.upsert_subscriber(NEW, "", kind="supergroup")
    await store.update_subscriber(NEW, timezone="Europe/Berlin", link_previews=True)
    new_oreshnik = await _subscribe(store, NEW, "Oreshnik")
    known = await store.get_subscriber(NEW)
    old = await store.get_subscriber(OLD)
    assert known is not None
    assert old is not None
    await store.upsert_subscriber(OLD, "Arms Control Desk", kind="group")  # active again
    # Post 1 matched both chats' Oreshnik (an alert waits for each); post 2 the old Iskander.
    await store.save_post(_post("1"), [old_oreshnik, new_oreshnik])
    await store.save_post(_post("2", "Iskander"), [old_iskander])

    assert await store.move_chat(OLD, NEW)

    merged = await store.get_subscriber(NEW)
    assert merged is not None
    assert (merged.timezone, merged.language, merged.tg_language) == ("Europe/Berlin", "ru", "ru")
    assert merged.link_previews  # its own kept
    assert merged.name == "Arms Control Desk"  # it had none
    assert merged.created_at == min(known.created_at, old.created_at)
    assert [(s.id, s.query) for s in await store.subscriptions_of(NEW)] == [
        (old_iskander.subscription_id, "Iskander"),
        (new_oreshnik.subscription_id, "Oreshnik"),
    ]
    entries = await store.digest_entries(NEW, NOW - timedelta(days=1), datetime.now(UTC))
    assert [(e.post.post.post_id, e.queries) for e in entries] == [
        ("1", ("Oreshnik",)),
        ("2", ("Iskander",)),
    ]
    waiting = await store.pending_messages(datetime.now(UTC) + timedelta(seconds=1))
    assert [(m.chat_id, m.post.post.post_id if m.post else None) for m in waiting] == [
        (NEW, "1"),
        (NEW, "2"),
    ]
    # The old chat's copy of the alert on post 1 is set aside, not sent twice.
    assert await store.outbox_counts() == {"pending": 2, "sent": 0, "failed": 1}
    assert await store.get_subscriber(OLD) is None
    assert not await store.move_chat(OLD, NEW)


async def test_matches_of_a_query_both_chats_have_are_joined(store: Storage) -> None:
    await _group(store)
    old_query = await _subscribe(store, OLD, "Oreshnik")
    await store.upsert_subscriber(NEW, "Arms Control Desk", kind="supergroup")
    new_query = await _subscribe(store, NEW, "Oreshnik")
    await store.save_post(_post("1", "Oreshnik one"), [old_query, new_query])  # both
    await store.save_post(_post("2", "Oreshnik two"), [old_query])  # the old chat only
    await store.save_post(_post("3", "Oreshnik three"), [new_query])  # the new chat only
    assert await store.move_chat(OLD, NEW)
    entries = await store.digest_entries(NEW, NOW - timedelta(days=1), datetime.now(UTC))
    assert [(e.post.post.post_id, e.queries) for e in entries] == [
        ("1", ("Oreshnik",)),
        ("2", ("Oreshnik",)),
        ("3", ("Oreshnik",)),
    ]
    assert [s.id for s in await store.subscriptions_of(NEW)] == [new_query.subscription_id]
    assert await store.get_subscription(old_query.subscription_id) is None


async def test_a_post_matched_by_the_old_index_alerts_the_new_chat(store: Storage) -> None:
    """Matching runs off the event loop: a post matched just before the move names the old
    chat; its match and alert go to the chat that has the query now."""
    await _group(store)
    stale = await _subscribe(store, OLD, "Oreshnik")
    assert await store.move_chat(OLD, NEW)
    saved = await store.save_post(_post("1"), [stale])
    assert saved.alerts_queued == 1
    (alert,) = await store.pending_messages(datetime.now(UTC) + timedelta(seconds=1))
    assert alert.chat_id == NEW
    entries = await store.digest_entries(NEW, NOW - timedelta(days=1), datetime.now(UTC))
    assert [e.post.post.post_id for e in entries] == ["1"]


async def test_settings_and_queries_move_without_any_post(store: Storage) -> None:
    await _group(store)
    due = NOW + timedelta(hours=5)
    await store.schedule_digests([(OLD, due)])
    query = await _subscribe(store, OLD, "Oreshnik", mode=MODE_DIGEST, preset="missiles")
    await store.queue_digest(OLD, ["<b>Digest</b>", "<b>more</b>"], NOW)
    before = await store.get_subscriber(OLD)
    assert before is not None
    assert before.next_digest_at == due

    assert await store.move_chat(OLD, NEW)

    after = await store.get_subscriber(NEW)
    assert after == replace(before, chat_id=NEW, kind="supergroup")
    (moved,) = await store.subscriptions_of(NEW)
    assert (moved.id, moved.chat_id, moved.mode, moved.preset) == (
        query.subscription_id,
        NEW,
        MODE_DIGEST,
        "missiles",
    )
    waiting = await store.pending_messages(datetime.now(UTC) + timedelta(seconds=1))
    assert [(m.kind, m.chat_id, m.text) for m in waiting] == [
        ("digest", NEW, "<b>Digest</b>"),
        ("digest", NEW, "<b>more</b>"),
    ]
    assert await store.remove_preset(NEW, "missiles") == [moved]


async def test_a_known_supergroup_keeps_its_own_state(store: Storage) -> None:
    await _group(store)
    await store.update_subscriber(OLD, language="ru", quiet_start="23:00", quiet_end="07:00")
    await store.schedule_digests([(OLD, NOW + timedelta(hours=5))])
    await _subscribe(store, OLD, "Oreshnik", mode=MODE_DIGEST)
    old_iskander = await _subscribe(store, OLD, "Iskander")
    known = await store.upsert_subscriber(NEW, "Desk (supergroup)", kind="supergroup")
    await store.update_subscriber(NEW, language="en", digest_enabled=False)
    new_oreshnik = await _subscribe(store, NEW, "Oreshnik")
    await store.deactivate_subscriber(NEW)  # it had blocked the bot: it stays blocked
    old = await store.get_subscriber(OLD)
    assert old is not None

    assert await store.move_chat(OLD, NEW)

    merged = await store.get_subscriber(NEW)
    assert merged is not None
    assert (merged.name, merged.kind, merged.active) == ("Desk (supergroup)", "supergroup", False)
    assert merged.created_at == min(known.created_at, old.created_at)
    assert (merged.language, merged.digest_enabled) == ("en", False)  # its own settings
    assert (merged.quiet_start, merged.quiet_end) == ("23:00", "07:00")  # what it lacked
    assert merged.tg_language == "ru"
    assert merged.next_digest_at is None  # its own (not worked out), not the old chat's
    # A query both have is kept once, as the new chat has it (its mode).
    assert [(s.id, s.query, s.mode) for s in await store.subscriptions_of(NEW)] == [
        (old_iskander.subscription_id, "Iskander", MODE_BOTH),
        (new_oreshnik.subscription_id, "Oreshnik", MODE_BOTH),
    ]
    assert await store.active_subscriptions() == []
    assert await store.get_subscriber(OLD) is None


async def test_two_workers_told_of_one_upgrade_move_it_once(store: Storage) -> None:
    await _group(store)
    query = await _subscribe(store, OLD, "Oreshnik")
    results = await asyncio.gather(*(store.move_chat(OLD, NEW) for _ in range(4)))
    assert sorted(results) == [False, False, False, True]
    assert [s.id for s in await store.subscriptions_of(NEW)] == [query.subscription_id]
    assert await store.get_subscriber(OLD) is None


async def test_filed_alerts_move_and_one_the_new_chat_had_is_set_aside(store: Storage) -> None:
    await _group(store)
    old_query = await _subscribe(store, OLD, "Oreshnik")
    await store.upsert_subscriber(NEW, "Arms Control Desk", kind="supergroup")
    new_query = await _subscribe(store, NEW, "Oreshnik")
    await store.save_post(_post("1"), [old_query, new_query])  # both chats
    await store.save_post(_post("2", "Oreshnik again"), [old_query, new_query])
    await store.save_post(_post("3", "Oreshnik thrice"), [old_query])  # the old chat only
    await store.file_alerts()
    later = datetime.now(UTC) + timedelta(seconds=1)
    sent = next(m for m in await store.pending_messages(later) if m.chat_id == NEW)
    await store.mark_sent(sent.id)  # the new chat had post 1's alert sent already
    assert sorted(await store.pending_chats(later, 10)) == sorted([OLD, NEW])

    assert await store.move_chat(OLD, NEW)

    assert await store.pending_chats(later, 10) == [NEW]
    waiting = await store.pending_messages(later)
    assert [(m.chat_id, m.post.post.post_id if m.post else None) for m in waiting] == [
        (NEW, "2"),
        (NEW, "3"),
    ]
    # Post 1 (sent to the new chat) and post 2 (waiting for it): the old copies set aside.
    assert await store.outbox_counts() == {"pending": 2, "sent": 1, "failed": 2}
    assert (await store.service_counts(later))["pending"] == 2
