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
-- Finished rows, oldest first, for pruning them a batch at a time.
CREATE INDEX outbox_finished ON outbox (COALESCE(sent_at, failed_at))
    WHERE sent_at IS NOT NULL OR failed_at IS NOT NULL;
