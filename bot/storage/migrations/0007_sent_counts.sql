-- Sent messages are not kept as outbox rows for long (the ingest-at-scale issue): a day's
-- count of what was sent, for /stats, outlives them.
CREATE TABLE sent_daily (
    day     TEXT PRIMARY KEY,  -- UTC date, YYYY-MM-DD
    alerts  INTEGER NOT NULL DEFAULT 0,
    digests INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO sent_daily (day, alerts, digests)
    SELECT substr(sent_at, 1, 10), SUM(kind = 'alert'), SUM(kind = 'digest')
    FROM outbox WHERE sent_at IS NOT NULL GROUP BY substr(sent_at, 1, 10);
-- Kept by the database itself, whatever marks a message sent.
CREATE TRIGGER sent_daily_count AFTER UPDATE OF sent_at ON outbox
WHEN old.sent_at IS NULL AND new.sent_at IS NOT NULL BEGIN
    INSERT INTO sent_daily (day, alerts, digests)
        VALUES (substr(new.sent_at, 1, 10), new.kind = 'alert', new.kind = 'digest')
        ON CONFLICT (day) DO UPDATE SET alerts = alerts + excluded.alerts,
            digests = digests + excluded.digests;
END;
-- Finished rows, oldest first, for pruning them a batch at a time.
CREATE INDEX outbox_finished ON outbox (COALESCE(sent_at, failed_at))
    WHERE sent_at IS NOT NULL OR failed_at IS NOT NULL;
