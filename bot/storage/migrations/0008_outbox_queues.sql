-- The sender's next messages in O(batch), not O(backlog) (the ingest-at-scale issue): with
-- 100,000 alerts waiting, grouping every waiting row to find the chats due took ~75 ms, after
-- every send. Each chat has two queues (its alerts, its digests); this table keeps, per
-- queue with something waiting, its oldest row (the order chats are served in) and when it
-- is due (its latest next_attempt_at: a queue with a postponed message waits whole). New
-- rows are added to it by the statements that queue them, a post's or a digest's at once
-- (`Storage._file_queues`: a trigger per row cost ingest a third of its rate at 10,000
-- subscriptions); the triggers keep it exact on every change and delete of a waiting row.

CREATE INDEX outbox_waiting ON outbox (chat_id, kind, id)
    WHERE sent_at IS NULL AND failed_at IS NULL;

CREATE TABLE outbox_queues (
    chat_id  INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    first_id INTEGER NOT NULL,  -- its oldest waiting row
    due_at   TEXT NOT NULL,     -- the latest next_attempt_at of its waiting rows
    PRIMARY KEY (chat_id, kind)
) WITHOUT ROWID;
CREATE INDEX outbox_queues_first ON outbox_queues (first_id);
CREATE INDEX outbox_queues_due ON outbox_queues (due_at);

-- A queue as the waiting rows make it; read for one queue at a time, the chat and kind reach
-- the index above (SQLite pushes them into the grouping).
CREATE VIEW outbox_waiting_queues AS
    SELECT chat_id, kind, MIN(id) AS first_id, MAX(next_attempt_at) AS due_at FROM outbox
    WHERE sent_at IS NULL AND failed_at IS NULL GROUP BY chat_id, kind;

INSERT INTO outbox_queues SELECT * FROM outbox_waiting_queues;

-- A row left its queue, changed its due time or moved to another chat: both queues it was
-- or is in are worked out again.
CREATE TRIGGER outbox_queue_update AFTER UPDATE OF sent_at, failed_at, next_attempt_at, chat_id
ON outbox BEGIN
    DELETE FROM outbox_queues
        WHERE (chat_id = old.chat_id AND kind = old.kind)
        OR (chat_id = new.chat_id AND kind = new.kind);
    INSERT OR IGNORE INTO outbox_queues SELECT * FROM outbox_waiting_queues
        WHERE chat_id = old.chat_id AND kind = old.kind;
    INSERT OR IGNORE INTO outbox_queues SELECT * FROM outbox_waiting_queues
        WHERE chat_id = new.chat_id AND kind = new.kind;
END;

CREATE TRIGGER outbox_queue_delete AFTER DELETE ON outbox
WHEN old.sent_at IS NULL AND old.failed_at IS NULL BEGIN
    DELETE FROM outbox_queues WHERE chat_id = old.chat_id AND kind = old.kind;
    INSERT INTO outbox_queues SELECT * FROM outbox_waiting_queues
        WHERE chat_id = old.chat_id AND kind = old.kind;
END;
