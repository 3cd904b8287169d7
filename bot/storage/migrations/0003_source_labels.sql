-- Sources labelled by their human names, and a source's health told by its outcomes.

-- The channel's name as the post carried it (a Telegram title, a feed's title, an X display
-- name); alerts show it instead of the bare channel key.
ALTER TABLE posts ADD COLUMN channel_title TEXT;
-- The source's latest name, shown in /sources next to its spec.
ALTER TABLE sources ADD COLUMN title TEXT;
-- Set from the first failure a retry will not fix soon (a refused token, a feed that is gone)
-- until a read succeeds: such a source is flagged at once, not after three failures.
ALTER TABLE sources ADD COLUMN stopped_at TEXT;
-- The first failure of the current streak (cleared by a read that succeeds).
ALTER TABLE sources ADD COLUMN failing_since TEXT;
