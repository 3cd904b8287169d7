-- The digest issue: the due time stored per chat, the digest's options, and a chart row.

-- When the chat's next digest is due (UTC). '' means "work it out" (a new chat, changed
-- settings, or a start of the service, whose DIGEST_TIME or TIMEZONE may have changed); it
-- sorts before every time, so one indexed range read finds both kinds.
ALTER TABLE subscribers ADD COLUMN next_digest_at TEXT NOT NULL DEFAULT '';
CREATE INDEX subscribers_next_digest ON subscribers (next_digest_at) WHERE active = 1;
-- Send a digest that says "nothing matched" on quiet days (off: no message at all).
ALTER TABLE subscribers ADD COLUMN digest_quiet_days INTEGER NOT NULL DEFAULT 0;
-- The 14-day trend chart with the digest (on by default).
ALTER TABLE subscribers ADD COLUMN digest_chart INTEGER NOT NULL DEFAULT 1;

-- A digest row may carry a picture instead of text: 'chart' (the row's text is the chart's
-- data as JSON, drawn when it is sent). It stays in the chat's digest queue, in order.
ALTER TABLE outbox ADD COLUMN media TEXT;
