-- A post's waiting alerts in one row, and no per-row foreign keys on what a save writes.
--
-- A post matching 600 subscriptions made 600 `matches` rows and ~600 `fresh_alerts` rows, and
-- each of those 1,200 rows fired a foreign-key check on its post (a key-share lock on the
-- post's row per inserted row): together most of the server's work for a post (11-13 ms of
-- CPU a post measured, against ~5 without them; benchmarks/workers.py).
--
-- * `fresh_alerts` holds one row per post: the chats alerted (`chats`, for "which posts wait
--   for these chats") and their alerts as one JSON array in chat order, each
--   {"chat_id", "queries", "spans"}. `fresh_alerts_take` takes alerts out (those of some chats,
--   or the oldest n in post and chat order) and returns them as rows, as the DELETE …
--   RETURNING of one row per alert did.
-- * No foreign keys from `matches` and `fresh_alerts` to `posts`. What they guarded holds
--   without them: a save writes them in the transaction that inserted the post, or that holds
--   the post's row locked (`_UPDATE_POST`: FOR UPDATE), so retention (which locks the posts it
--   deletes and looks at `fresh_alerts` again under the lock) cannot delete the post under a
--   save; and retention deletes a post's matches itself (it counts them).

ALTER TABLE matches DROP CONSTRAINT matches_post_id_fkey;

ALTER TABLE fresh_alerts RENAME TO fresh_alerts_rows;
CREATE TABLE fresh_alerts (
    post_id bigint PRIMARY KEY,
    chats   bigint[] NOT NULL,  -- the chats of `alerts`, in the same order
    alerts  jsonb NOT NULL      -- [{"chat_id", "queries", "spans"}, ...] by chat id
);
INSERT INTO fresh_alerts (post_id, chats, alerts)
    SELECT post_id, array_agg(chat_id ORDER BY chat_id),
        jsonb_agg(jsonb_build_object('chat_id', chat_id, 'queries', queries, 'spans', spans)
            ORDER BY chat_id)
    FROM fresh_alerts_rows GROUP BY post_id;
DROP TABLE fresh_alerts_rows;
-- Alerts queued wake the sender (migration 0005; its trigger went with the old table).
CREATE TRIGGER fresh_alerts_notify AFTER INSERT ON fresh_alerts
    FOR EACH STATEMENT EXECUTE FUNCTION dozor_queued();

-- Take alerts out of `fresh_alerts`: every one of the chats `wanted`, or (`wanted` NULL) the
-- oldest `n` in post and chat order. A post's row keeps what was not taken, and goes when
-- nothing is left. The rows are locked in post order, so two takers wait for each other in
-- that order, and the second finds what the first left.
--
-- Each alert comes with its post's `updated_at` (when it was queued, for the outbox row),
-- read here: the function's statements see what was committed after the calling statement
-- began (a post saved meanwhile, with its alerts), which the caller's own snapshot does not,
-- so a caller joining `posts` itself would drop those alerts after they were taken.
CREATE FUNCTION fresh_alerts_take(wanted bigint[], n integer)
RETURNS TABLE (post_id bigint, chat_id bigint, queries jsonb, spans jsonb,
    queued_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    fresh record;
    room integer := n;
    taken integer;
    queued timestamptz;
BEGIN
    FOR fresh IN
        SELECT f.post_id, f.alerts FROM fresh_alerts AS f
        WHERE wanted IS NULL OR f.chats && wanted
        ORDER BY f.post_id
        FOR UPDATE
    LOOP
        EXIT WHEN wanted IS NULL AND room <= 0;
        SELECT posts.updated_at INTO queued FROM posts WHERE posts.id = fresh.post_id;
        RETURN QUERY
            SELECT fresh.post_id, (element.alert ->> 'chat_id')::bigint,
                element.alert -> 'queries', element.alert -> 'spans', queued
            FROM jsonb_array_elements(fresh.alerts) WITH ORDINALITY AS element (alert, ord)
            WHERE CASE WHEN wanted IS NULL THEN element.ord <= room
                ELSE (element.alert ->> 'chat_id')::bigint = ANY (wanted) END
            ORDER BY element.ord;
        GET DIAGNOSTICS taken = ROW_COUNT;
        IF taken = jsonb_array_length(fresh.alerts) THEN
            DELETE FROM fresh_alerts WHERE fresh_alerts.post_id = fresh.post_id;
        ELSIF taken > 0 THEN
            UPDATE fresh_alerts SET (chats, alerts) = (
                SELECT array_agg((element.alert ->> 'chat_id')::bigint ORDER BY element.ord),
                    jsonb_agg(element.alert ORDER BY element.ord)
                FROM jsonb_array_elements(fresh.alerts) WITH ORDINALITY AS element (alert, ord)
                WHERE NOT CASE WHEN wanted IS NULL THEN element.ord <= room
                    ELSE (element.alert ->> 'chat_id')::bigint = ANY (wanted) END
            )
            WHERE fresh_alerts.post_id = fresh.post_id;
        END IF;
        room := room - taken;
    END LOOP;
END
$$;
