"""The outbox on both engines: alerts filed in order, each chat's two queues (its alerts, its
digests) due whole, every send recorded and counted, and retention that never touches what
still waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain import Post, Span
from bot.storage import Storage
from bot.storage.records import KEEP_PER_SOURCE, MatchRecord, PendingMessage, Pruned

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _later() -> datetime:
    """A moment by which every row queued now is due (rows are stamped with the real time)."""
    return datetime.now(UTC) + timedelta(days=1)


def _far() -> datetime:
    """A retention cutoff past every post stored now."""
    return datetime.now(UTC) + timedelta(days=400)


def _post(number: int | str, date: datetime = NOW, channel: str = "ch") -> Post:
    return Post(
        "jsonl", channel, str(number), date, f"Oreshnik {number}", f"https://t.me/{number}"
    )


async def _subscribe(store: Storage, chat_id: int, query: str = "Oreshnik") -> MatchRecord:
    await store.upsert_subscriber(chat_id, f"user {chat_id}")
    subscription = await store.add_subscription(chat_id, query)
    assert subscription is not None
    return MatchRecord(subscription.id, chat_id, query, (Span(0, 8),))


def _what(messages: list[PendingMessage]) -> list[tuple[int, str | None]]:
    """(chat, post number or the digest's text) of each message, in the order given."""
    return [(m.chat_id, m.post.post.post_id if m.post else m.text) for m in messages]


async def _waiting(store: Storage, chats: list[int]) -> list[tuple[int, str | None]]:
    """Every filed message waiting for these chats, in the order they would go."""
    return _what(await store.pending_messages(_later(), 1000, chats=chats))


# --- filing --------------------------------------------------------------------------------


async def test_alerts_are_filed_in_batches_in_post_order(store: Storage) -> None:
    matches = [await _subscribe(store, chat) for chat in (3, 1, 2)]
    for number in range(5):
        assert (await store.save_post(_post(number), matches)).alerts_queued == 3
    assert await _waiting(store, [1, 2, 3]) == []
    assert (await store.outbox_counts())["pending"] == 15  # counted while unfiled
    assert await store.next_attempt_at() is not None  # the sender looks at once

    assert await store.file_alerts(batch=4) == 4
    assert await store.file_alerts(batch=4) == 4
    assert await _waiting(store, [1, 2, 3]) == [
        (1, "0"),
        (2, "0"),
        (3, "0"),
        (1, "1"),
        (2, "1"),
        (3, "1"),
        (1, "2"),
        (2, "2"),
    ]
    while await store.file_alerts(batch=4):
        pass
    for chat in (1, 2, 3):
        assert await _waiting(store, [chat]) == [(chat, str(n)) for n in range(5)]
    assert (await store.outbox_counts())["pending"] == 15
    assert await store.file_alerts() == 0


async def test_a_filed_alert_carries_its_post_queries_and_spans(store: Storage) -> None:
    one = await _subscribe(store, 1, "Oreshnik")
    other = await _subscribe(store, 1, "launched")
    launched = MatchRecord(other.subscription_id, 1, "launched", (Span(12, 20), Span(0, 8)))
    post = Post("jsonl", "ch", "1", NOW, "Oreshnik is launched", "https://t.me/ch/1", views=7)
    await store.save_post(post, [one, launched])
    (message,) = await store.pending_messages(_later())
    assert (message.kind, message.chat_id, message.attempts) == ("alert", 1, 0)
    assert message.queries == ("Oreshnik", "launched")
    assert message.spans == (Span(0, 8), Span(12, 20))
    assert message.post is not None
    assert message.post.post == post
    assert (message.text, message.media) == (None, None)


async def test_an_edit_files_no_second_alert_and_a_reread_none(store: Storage) -> None:
    match = await _subscribe(store, 1)
    await store.save_post(_post(1), [match])
    await store.save_post(_post(1), [match])  # the same post read again
    edited = Post("jsonl", "ch", "1", NOW, "Oreshnik 1, updated", "https://t.me/1")
    assert (await store.save_post(edited, [match])).alerts_queued == 0
    await store.file_alerts()
    assert await _waiting(store, [1]) == [(1, "1")]


async def test_a_digest_goes_after_the_alerts_queued_before_it(store: Storage) -> None:
    match = await _subscribe(store, 1)
    await store.save_post(_post(1), [match])
    await store.queue_digest(1, ["<b>Digest</b>"], NOW)
    await store.save_post(_post(2), [match])
    assert _what(await store.pending_messages(_later())) == [
        (1, "1"),
        (1, "<b>Digest</b>"),
        (1, "2"),
    ]


# --- what is due -------------------------------------------------------------------------


async def test_chats_are_served_longest_waiting_first(store: Storage) -> None:
    matches = {chat: await _subscribe(store, chat) for chat in (5, 6, 7, 8)}
    await store.save_post(_post(1), [matches[7], matches[5]])
    await store.save_post(_post(2), [matches[6], matches[5]])
    await store.save_post(_post(3), [matches[8]])
    await store.file_alerts()
    await store.queue_digest(6, ["digest"], NOW)  # a second queue for chat 6
    later = _later()
    assert await store.pending_chats(later, 10) == [5, 7, 6, 8]
    assert await store.pending_chats(later, 2) == [5, 7]
    assert await store.pending_chats(later, 10, skip_chats={5, 8}) == [7, 6]
    assert await store.pending_chats(datetime.now(UTC) - timedelta(hours=1), 10) == []
    await store.deactivate_subscriber(7)
    assert await store.pending_chats(later, 10) == [5, 6, 8]


async def test_pending_messages_without_chats_files_and_chooses_them(store: Storage) -> None:
    matches = [await _subscribe(store, chat) for chat in (1, 2, 3)]
    for number in range(3):
        await store.save_post(_post(number), matches)
    # The oldest first, at most `limit`, from at most `limit` chats.
    assert _what(await store.pending_messages(_later(), 4)) == [
        (1, "0"),
        (2, "0"),
        (3, "0"),
        (1, "1"),
    ]
    two_each = await store.pending_messages(_later(), 100, chats=[3, 1], per_chat=2)
    assert _what(two_each) == [(1, "0"), (3, "0"), (1, "1"), (3, "1")]
    assert await store.pending_messages(_later(), chats=[]) == []
    assert await store.pending_messages(_later(), chats=[99]) == []


async def test_a_chats_messages_are_counted_across_both_its_queues(store: Storage) -> None:
    match = await _subscribe(store, 1)
    await store.save_post(_post(1), [match])
    await store.queue_digest(1, ["first part", "second part"], NOW)
    await store.save_post(_post(2), [match])
    await store.file_alerts()
    messages = await store.pending_messages(_later(), 100, chats=[1], per_chat=3)
    assert _what(messages) == [(1, "1"), (1, "first part"), (1, "second part")]
    assert [m.kind for m in messages] == ["alert", "digest", "digest"]


async def test_outbox_states(store: Storage) -> None:
    match = await _subscribe(store, 1)
    for number in (1, 2, 3):
        await store.save_post(_post(number), [match])
    first, second, third = await store.pending_messages(datetime.now(UTC))
    await store.mark_sent(first.id)
    await store.set_aside(third.id, "Bad Request: can't parse entities")
    assert await store.outbox_counts() == {"pending": 1, "sent": 1, "failed": 1}
    later = datetime.now(UTC) + timedelta(seconds=30)
    await store.postpone(second.id, later, "Too Many Requests")
    assert await store.pending_messages(datetime.now(UTC)) == []
    assert await store.next_attempt_at() == later
    due = await store.pending_messages(later)
    assert [m.id for m in due] == [second.id]
    assert due[0].attempts == 1
    await store.mark_sent([])  # nothing: no error
    await store.set_aside(set(), "nothing")
    assert await store.outbox_counts() == {"pending": 1, "sent": 1, "failed": 1}


async def test_a_postponed_alert_holds_back_its_chats_alerts_but_not_its_digest(
    store: Storage,
) -> None:
    one, two = await _subscribe(store, 1), await _subscribe(store, 2)
    await store.save_post(_post(1), [one, two])
    await store.save_post(_post(2), [one, two])
    pending = await store.pending_messages(datetime.now(UTC))
    first_for_1 = next(m for m in pending if m.chat_id == 1)
    postponed = datetime.now(UTC) + timedelta(hours=1)
    await store.postpone(first_for_1.id, postponed, "429")
    due = await store.pending_messages(datetime.now(UTC))
    assert {m.chat_id for m in due} == {2}  # chat 1's second alert must not overtake its first
    await store.mark_sent([m.id for m in due])
    assert await store.next_attempt_at() == postponed  # not the alert behind it
    assert await store.pending_chats(datetime.now(UTC), 10) == []
    await store.queue_digest(1, ["<b>Digest</b>"], NOW)
    assert await store.pending_chats(datetime.now(UTC), 10) == [1]
    assert _what(await store.pending_messages(datetime.now(UTC))) == [(1, "<b>Digest</b>")]
    assert _what(await store.pending_messages(postponed)) == [
        (1, "1"),
        (1, "2"),
        (1, "<b>Digest</b>"),
    ]


async def test_held_alerts_wait_and_released_ones_are_due_again(store: Storage) -> None:
    match = await _subscribe(store, 3)
    for number in (1, 2):
        await store.save_post(_post(number), [match])
    await store.file_alerts()
    await store.queue_digest(3, ["digest"], NOW)
    until = datetime.now(UTC) + timedelta(hours=2)
    assert await store.hold_alerts(3, until) == 2
    assert await store.hold_alerts(3, until) == 0  # held till then already
    assert _what(await store.pending_messages(datetime.now(UTC))) == [(3, "digest")]
    (digest,) = await store.pending_messages(datetime.now(UTC))
    await store.mark_sent(digest.id)
    assert await store.next_attempt_at() == until
    assert 3 not in await store.pending_chats(until - timedelta(seconds=1), 10)
    assert await store.pending_chats(until, 10) == [3]
    assert await store.release_alerts(3) == 2
    assert await store.release_alerts(3) == 0
    assert _what(await store.pending_messages(datetime.now(UTC))) == [(3, "1"), (3, "2")]
    held = await store.pending_messages(datetime.now(UTC))
    assert [m.attempts for m in held] == [0, 0]  # holding is no attempt


async def test_every_change_to_waiting_messages_moves_what_is_due(store: Storage) -> None:
    # The queue summaries (SQLite's `outbox_queues`, kept by triggers on both engines) must
    # follow every kind of change: what is due, and when next, says so.
    matches = [await _subscribe(store, chat) for chat in (1, 2, 3)]
    for number in range(6):
        await store.save_post(_post(number), matches)
    await store.file_alerts()
    now = datetime.now(UTC) + timedelta(seconds=1)
    await store.queue_digest(1, ["<b>Digest</b>"], now)
    waiting = await store.pending_messages(now + timedelta(seconds=1))
    by_chat: dict[int, list[int]] = {}
    for message in waiting:
        by_chat.setdefault(message.chat_id, []).append(message.id)
    assert [len(by_chat[chat]) for chat in (1, 2, 3)] == [7, 6, 6]

    await store.mark_sent(by_chat[1][:2])
    later = now + timedelta(hours=1, seconds=1)
    assert await store.pending_chats(later, 10) == [2, 3, 1]  # chat 1's queue starts later
    await store.postpone(by_chat[2][0], now + timedelta(hours=1), "429")
    assert await store.pending_chats(now, 10) == [3, 1]
    await store.hold_alerts(3, now + timedelta(hours=2))
    assert await store.pending_chats(later, 10) == [2, 1]  # chat 3 held past `later`
    await store.release_alerts(3)
    assert await store.pending_chats(now, 10) == [3, 1]
    await store.set_aside(by_chat[2][1:3], "refused")
    assert await store.outbox_counts() == {"pending": 15, "sent": 2, "failed": 2}
    assert await store.move_chat(3, 30)
    assert await store.pending_chats(now, 10) == [30, 1]
    await store.mark_sent([m.id for m in await store.pending_messages(later, 100)])
    assert await store.outbox_counts() == {"pending": 0, "sent": 17, "failed": 2}
    assert await store.next_attempt_at() is None
    assert await store.pending_chats(_far(), 10) == []


async def test_nothing_pending_is_nothing_due(store: Storage) -> None:
    assert await store.next_attempt_at() is None
    assert await store.oldest_pending_at() is None
    assert await store.pending_chats(_far(), 10) == []
    assert await store.pending_messages(_far()) == []
    assert await store.outbox_counts() == {"pending": 0, "sent": 0, "failed": 0}
    assert await store.file_alerts() == 0


async def test_the_oldest_pending_message_is_told_for_active_chats_only(store: Storage) -> None:
    one, two = await _subscribe(store, 1), await _subscribe(store, 2)
    before = datetime.now(UTC)
    await store.save_post(_post(1), [one])
    await store.save_post(_post(2), [two])
    unfiled = await store.oldest_pending_at()
    assert unfiled is not None
    assert before <= unfiled <= datetime.now(UTC)
    await store.file_alerts()
    assert await store.oldest_pending_at() == unfiled  # filed, it keeps its time
    await store.deactivate_subscriber(1)
    second = await store.oldest_pending_at()
    assert second is not None
    assert second > unfiled
    await store.deactivate_subscriber(2)
    assert await store.oldest_pending_at() is None


# --- blocked chats -------------------------------------------------------------------------


async def test_a_blocked_chat_keeps_its_messages_and_gets_them_after_start(
    store: Storage,
) -> None:
    match = await _subscribe(store, 1)
    await store.save_post(_post(1), [match])
    await store.deactivate_subscriber(1)
    assert await store.next_attempt_at() is not None  # an alert to file: it is filed too
    assert await store.pending_messages(datetime.now(UTC)) == []
    assert await store.next_attempt_at() is None  # filed; its chat gets nothing now
    assert (await store.outbox_counts())["pending"] == 1
    await store.upsert_subscriber(1, "back again")  # /start reactivates
    assert len(await store.pending_messages(datetime.now(UTC))) == 1


async def test_a_chat_that_blocks_the_bot_has_its_waiting_alerts_set_aside(
    store: Storage,
) -> None:
    one, two = await _subscribe(store, 1), await _subscribe(store, 2)
    await store.save_post(_post(1), [one, two])
    await store.file_alerts()
    await store.save_post(_post(2), [one, two])  # not filed yet
    await store.queue_digest(2, ["digest for 2"], NOW)  # (files chat 2's alerts)
    await store.deactivate_subscriber(1)
    assert await store.set_aside_chat(1, "Forbidden: bot was blocked by the user") == 2
    assert await store.outbox_counts() == {"pending": 3, "sent": 0, "failed": 2}
    assert await store.set_aside_chat(1, "Forbidden: bot was blocked by the user") == 0
    assert await store.pending_messages(_later(), chats=[1]) == []
    # A chat blocked before a post is read gets no alert for it at all.
    assert (await store.save_post(_post(3), [one, two])).alerts_queued == 1
    assert _what(await store.pending_messages(_later())) == [
        (2, "1"),
        (2, "2"),
        (2, "digest for 2"),
        (2, "3"),
    ]


# --- sent and finished rows ------------------------------------------------------------------


async def test_sent_alerts_are_counted_for_the_day_once(store: Storage) -> None:
    match = await _subscribe(store, 1)
    for number in range(3):
        await store.save_post(_post(number), [match])
    first, second, third = await store.pending_messages(_later())
    await store.mark_sent([first.id, second.id])
    await store.mark_sent(first.id)  # recorded twice (a retried write): counted once
    await store.queue_digest(1, ["digest"], NOW)
    digest = next(m for m in await store.pending_messages(_later()) if m.kind == "digest")
    await store.mark_sent(digest.id)  # digests are not alerts
    await store.set_aside(third.id, "refused")
    today = datetime.now(UTC)
    assert (await store.service_counts(today))["alerts"] == 2
    assert (await store.service_counts(today + timedelta(days=1)))["alerts"] == 0


async def test_sent_rows_leave_the_outbox_after_a_while_and_waiting_ones_never(
    store: Storage,
) -> None:
    match = await _subscribe(store, 1)
    for number in range(4):
        await store.save_post(_post(number), [match])
    first, second, third, fourth = await store.pending_messages(datetime.now(UTC))
    await store.mark_sent([first.id, second.id])
    await store.set_aside(third.id, "refused")
    long_ago = datetime.now(UTC) - timedelta(days=1)
    soon = datetime.now(UTC) + timedelta(hours=1)
    assert await store.prune_finished(long_ago, long_ago) == 0
    assert await store.prune_finished(soon, long_ago, batch=1) == 2
    assert await store.prune_finished(soon, long_ago) == 0
    assert await store.outbox_counts() == {"pending": 1, "sent": 0, "failed": 1}
    assert [m.id for m in await store.pending_messages(datetime.now(UTC))] == [fourth.id]
    assert (await store.service_counts(datetime.now(UTC)))["alerts"] == 2  # still counted
    assert await store.prune_finished(_far(), _far()) == 1
    assert await store.outbox_counts() == {"pending": 1, "sent": 0, "failed": 0}


# --- retention ---------------------------------------------------------------------------


async def test_old_posts_go_with_their_matches_and_finished_alerts(store: Storage) -> None:
    match = await _subscribe(store, 1)
    await store.save_post(_post("old"), [match])
    await store.save_post(_post("old-unmatched"), [])
    await store.mark_sent([m.id for m in await store.pending_messages(_later())])
    future = _far() + timedelta(days=100)  # dated after the cutoff: it stays
    await store.save_post(_post("new", future), [match])
    await store.mark_sent([m.id for m in await store.pending_messages(_later())])

    assert await store.prune(_far()) == Pruned(posts=2, matches=1, messages=1)
    assert await store.get_post("jsonl", "ch", "old") is None
    assert await store.get_post("jsonl", "ch", "new") is not None
    assert await store.outbox_counts() == {"pending": 0, "sent": 1, "failed": 0}
    assert await store.prune(_far()) == Pruned()  # nothing left to do


async def test_nothing_newer_than_the_cutoff_goes(store: Storage) -> None:
    await store.save_post(_post(1), [])
    assert await store.prune(datetime.now(UTC) - timedelta(days=1)) == Pruned()
    assert await store.count_posts() == 1


async def test_a_waiting_alert_keeps_its_post_until_it_is_finished(store: Storage) -> None:
    first, second = await _subscribe(store, 1), await _subscribe(store, 2)
    await store.save_post(_post(1), [first, second])
    assert await store.prune(_far()) == Pruned()  # both alerts unfiled
    waiting = await store.pending_messages(_later())
    await store.mark_sent(next(m.id for m in waiting if m.chat_id == 1))
    held_until = _far() + timedelta(days=1)
    await store.hold_alerts(2, held_until)  # muted for long: its alert still waits
    assert await store.prune(_far()) == Pruned()
    assert await store.count_posts() == 1

    (held,) = await store.pending_messages(held_until)
    await store.set_aside(held.id, "Bad Request: chat not found")
    assert await store.prune(_far()) == Pruned(posts=1, matches=2, messages=2)
    assert await store.outbox_counts() == {"pending": 0, "sent": 0, "failed": 0}


async def test_old_finished_digests_go_and_waiting_ones_stay(store: Storage) -> None:
    await store.upsert_subscriber(1, "user 1")
    await store.queue_digest(1, ["sent"], NOW)
    await store.mark_sent([m.id for m in await store.pending_messages(_later())])
    await store.queue_digest(1, ["set aside"], NOW)
    aside = await store.pending_messages(_later())
    await store.set_aside([m.id for m in aside], "Bad Request: message is too long")
    await store.queue_digest(1, ["waiting"], NOW)

    assert await store.prune(datetime.now(UTC) - timedelta(days=1)) == Pruned()
    assert await store.prune(_far(), batch=1) == Pruned(messages=2)
    assert [m.text for m in await store.pending_messages(_later())] == ["waiting"]
    assert await store.outbox_counts() == {"pending": 1, "sent": 0, "failed": 0}


async def test_each_source_keeps_its_newest_posts(store: Storage) -> None:
    source_id = await store.ensure_source("jsonl:/srv/quiet.jsonl", "jsonl")
    for n in range(KEEP_PER_SOURCE + 3):
        await store.save_post(_post(n, NOW + timedelta(days=n)), [], source_id=source_id)
    await store.save_post(_post("no source"), [])
    assert await store.prune(_far()) == Pruned(posts=4)
    assert await store.get_post("jsonl", "ch", "2") is None
    assert await store.get_post("jsonl", "ch", "3") is not None
    assert await store.count_posts() == KEEP_PER_SOURCE


async def test_a_prune_runs_in_batches_and_stops_when_asked(store: Storage) -> None:
    for n in range(5):
        await store.save_post(_post(n), [])
    assert await store.prune(_far(), stop=lambda: True) == Pruned()
    asked: list[int] = []

    def stop_after_two() -> bool:
        asked.append(1)
        return len(asked) > 2

    assert await store.prune(_far(), batch=2, stop=stop_after_two) == Pruned(posts=4)
    assert await store.count_posts() == 1
    assert await store.prune(_far(), batch=2) == Pruned(posts=1)
