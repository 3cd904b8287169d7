-- Personal settings per chat, and per-query options (the conversation issue).

-- The language the chat chose with /lang (NULL: follow `tg_language`, the Telegram
-- language_code last seen from the person who talks to the bot).
ALTER TABLE subscribers ADD COLUMN language TEXT;
ALTER TABLE subscribers ADD COLUMN tg_language TEXT;
-- 'private', 'group', 'supergroup' or 'channel'.
ALTER TABLE subscribers ADD COLUMN kind TEXT NOT NULL DEFAULT 'private';
-- An IANA zone name (NULL: the service's TIMEZONE).
ALTER TABLE subscribers ADD COLUMN timezone TEXT;
-- The digest's local time 'HH:MM' (NULL: the service's DIGEST_TIME); 0 turns it off.
ALTER TABLE subscribers ADD COLUMN digest_time TEXT;
ALTER TABLE subscribers ADD COLUMN digest_enabled INTEGER NOT NULL DEFAULT 1;
-- Alerts are held until this moment (UTC), then delivered together.
ALTER TABLE subscribers ADD COLUMN muted_until TEXT;
-- Quiet hours, local 'HH:MM' each (both NULL: none); alerts are held through them.
ALTER TABLE subscribers ADD COLUMN quiet_start TEXT;
ALTER TABLE subscribers ADD COLUMN quiet_end TEXT;
ALTER TABLE subscribers ADD COLUMN link_previews INTEGER NOT NULL DEFAULT 0;
-- When the bot introduced itself in a group (once).
ALTER TABLE subscribers ADD COLUMN introduced_at TEXT;

-- 'both' (alerts and digest), 'instant' (alerts only) or 'digest' (digest only).
ALTER TABLE subscriptions ADD COLUMN mode TEXT NOT NULL DEFAULT 'both';
ALTER TABLE subscriptions ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
-- The preset a query came from (removed together with it), NULL for the chat's own.
ALTER TABLE subscriptions ADD COLUMN preset TEXT;
