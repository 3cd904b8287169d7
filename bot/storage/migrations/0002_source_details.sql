-- Telegram sources: forwards, views, albums, deletions; sources managed from chat.

ALTER TABLE posts ADD COLUMN forwarded_from TEXT;
ALTER TABLE posts ADD COLUMN views INTEGER;
ALTER TABLE posts ADD COLUMN media_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE posts ADD COLUMN deleted_at TEXT;
ALTER TABLE posts ADD COLUMN source_id INTEGER REFERENCES sources (id);

ALTER TABLE sources ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sources ADD COLUMN origin TEXT NOT NULL DEFAULT 'config';
CREATE INDEX posts_source_stored ON posts (source_id, stored_at);
