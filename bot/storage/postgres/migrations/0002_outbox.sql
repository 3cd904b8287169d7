-- The outbox's queue summaries and the day's sent counts, kept by the database itself.
--
-- The sender's next chats in O(batch), not O(backlog). An index alone cannot give that: the
-- order is each queue's oldest waiting row (a chat's alerts and its digests are two queues),
-- and a queue is due only when its latest next_attempt_at is. Walking `outbox_waiting` in id
-- order visits every row of a chat whose alerts are held (muted for a week: thousands of
-- rows, ahead of everyone) before the next queue's head; no partial index can hold "the
-- oldest row of its queue" alone. So, as on SQLite, a table holds one row per queue with
-- something waiting: its oldest row and when it is due.
--
-- Statement-level triggers with transition tables keep it exact whoever writes the outbox
-- (filing alerts, queueing digests, a chat's move, a send recorded): one set-based statement
-- per outbox statement, not one per row. Several workers write at once, so a summary is
-- worked out under a per-chat transaction lock: the summary's writers take turns, and the
-- next one reads (a fresh snapshot, READ COMMITTED) everything the one before committed. A
-- summary worked out without the lock could be overwritten by an older view of the chat's
-- rows and stay there, naming rows long gone.

CREATE TABLE outbox_queues (
    chat_id  bigint NOT NULL,
    kind     text NOT NULL,
    first_id bigint NOT NULL,       -- its oldest waiting row
    due_at   timestamptz NOT NULL,  -- the latest next_attempt_at of its waiting rows
    PRIMARY KEY (chat_id, kind)
);
CREATE INDEX outbox_queues_first ON outbox_queues (first_id);
CREATE INDEX outbox_queues_due ON outbox_queues (due_at);

-- A queue's latest due time in one index probe (with `outbox_waiting` for its oldest row),
-- so recording a send does not read the chat's whole backlog.
CREATE INDEX outbox_waiting_due ON outbox (chat_id, kind, next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;

-- The chats' summary lock: transaction-scoped advisory locks in the two-key space (apart from
-- the migrations' one-key lock), 'dozo' and the chat's hash, taken in key order so two
-- writers never wait for each other in a circle. Two chats sharing a hash only take turns.
-- A statement locks the outbox rows it changes first and the chats at its end (the triggers),
-- so a transaction that goes on to change waiting rows of a chat it has locked could wait in
-- a circle with a sender recording a send there (PostgreSQL would cancel one): change a
-- chat's waiting rows in a transaction's last outbox statement (`set_aside_chat` does).
CREATE FUNCTION outbox_lock_chats(chats bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    key integer;
BEGIN
    FOR key IN SELECT DISTINCT hashint8(chat) FROM unnest(chats) AS chat ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(1685027439, key);
    END LOOP;
END
$$;

-- Work out afresh the summaries of these chats' queues (both kinds) from their waiting rows.
CREATE FUNCTION outbox_requeue(chats bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(chats) = 0 THEN
        RETURN;
    END IF;
    PERFORM outbox_lock_chats(chats);
    DELETE FROM outbox_queues WHERE chat_id = ANY (chats);
    INSERT INTO outbox_queues (chat_id, kind, first_id, due_at)
        SELECT queue.chat_id, queue.kind, head.id, latest.next_attempt_at
        FROM (SELECT DISTINCT chat FROM unnest(chats) AS chat) AS queue_chat (chat_id)
        CROSS JOIN (VALUES ('alert'), ('digest')) AS queue_kind (kind)
        CROSS JOIN LATERAL (SELECT queue_chat.chat_id, queue_kind.kind) AS queue
        CROSS JOIN LATERAL (
            SELECT id FROM outbox
            WHERE outbox.chat_id = queue.chat_id AND outbox.kind = queue.kind
                AND sent_at IS NULL AND failed_at IS NULL
            ORDER BY id LIMIT 1
        ) AS head
        CROSS JOIN LATERAL (
            SELECT next_attempt_at FROM outbox
            WHERE outbox.chat_id = queue.chat_id AND outbox.kind = queue.kind
                AND sent_at IS NULL AND failed_at IS NULL
            ORDER BY next_attempt_at DESC LIMIT 1
        ) AS latest;
END
$$;

-- New waiting rows join their queues (a queue's summary is exact under the lock, so it is
-- merged with, not worked out again: filing 500 alerts reads no backlog).
CREATE FUNCTION outbox_queues_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM outbox_lock_chats(ARRAY(
        SELECT DISTINCT chat_id FROM added WHERE sent_at IS NULL AND failed_at IS NULL
    ));
    INSERT INTO outbox_queues AS queue (chat_id, kind, first_id, due_at)
        SELECT chat_id, kind, MIN(id), MAX(next_attempt_at) FROM added
        WHERE sent_at IS NULL AND failed_at IS NULL
        GROUP BY chat_id, kind ORDER BY chat_id, kind
        ON CONFLICT (chat_id, kind) DO UPDATE SET
            first_id = LEAST(queue.first_id, excluded.first_id),
            due_at = GREATEST(queue.due_at, excluded.due_at);
    RETURN NULL;
END
$$;

-- A waiting row was sent, set aside, postponed, held, released or moved to another chat:
-- the queues it was and is in are worked out again (only those: a new attempt count alone
-- changes nothing).
CREATE FUNCTION outbox_queues_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM outbox_requeue(ARRAY(
        SELECT unnest(ARRAY[before.chat_id, after.chat_id])
        FROM changed_from AS before JOIN changed_to AS after USING (id)
        WHERE (before.sent_at IS NULL AND before.failed_at IS NULL
                OR after.sent_at IS NULL AND after.failed_at IS NULL)
            AND (before.chat_id, before.kind, before.sent_at, before.failed_at,
                    before.next_attempt_at)
                IS DISTINCT FROM (after.chat_id, after.kind, after.sent_at, after.failed_at,
                    after.next_attempt_at)
    ));
    RETURN NULL;
END
$$;

CREATE FUNCTION outbox_queues_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM outbox_requeue(ARRAY(
        SELECT DISTINCT chat_id FROM removed WHERE sent_at IS NULL AND failed_at IS NULL
    ));
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_queues_insert AFTER INSERT ON outbox
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_queues_insert();
CREATE TRIGGER outbox_queues_update AFTER UPDATE ON outbox
    REFERENCING OLD TABLE AS changed_from NEW TABLE AS changed_to
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_queues_update();
CREATE TRIGGER outbox_queues_delete AFTER DELETE ON outbox
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_queues_delete();

-- A day's sent alerts and digests (UTC) outlive the rows, which are pruned soon after: what
-- marks a row sent is counted here, as SQLite's `sent_daily_count` trigger does.
CREATE FUNCTION sent_daily_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sent_daily AS daily (day, alerts, digests)
        SELECT (after.sent_at AT TIME ZONE 'UTC')::date,
            COUNT(*) FILTER (WHERE after.kind = 'alert'),
            COUNT(*) FILTER (WHERE after.kind = 'digest')
        FROM changed_from AS before JOIN changed_to AS after USING (id)
        WHERE before.sent_at IS NULL AND after.sent_at IS NOT NULL
        GROUP BY 1 ORDER BY 1
        ON CONFLICT (day) DO UPDATE SET
            alerts = daily.alerts + excluded.alerts,
            digests = daily.digests + excluded.digests;
    RETURN NULL;
END
$$;

CREATE TRIGGER sent_daily_count AFTER UPDATE ON outbox
    REFERENCING OLD TABLE AS changed_from NEW TABLE AS changed_to
    FOR EACH STATEMENT EXECUTE FUNCTION sent_daily_count();
