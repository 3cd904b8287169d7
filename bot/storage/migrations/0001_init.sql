-- Foundation schema: sources and cursors, posts with full-text index, subscribers,
-- subscriptions, matches and the outbox. Times are UTC ISO-8601 text (sortable).

CREATE TABLE sources (
    id            INTEGER PRIMARY KEY,
    spec          TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL,
    cursor        TEXT,
    added_at      TEXT NOT NULL,
    last_ok_at    TEXT,
    last_error    TEXT,
    last_error_at TEXT,
    failures      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE posts (
    id         INTEGER PRIMARY KEY,
    source     TEXT NOT NULL,
    channel    TEXT NOT NULL,
    post_id    TEXT NOT NULL,
    date       TEXT NOT NULL,
    text       TEXT NOT NULL,
    url        TEXT,
    edited     INTEGER NOT NULL DEFAULT 0,
    deleted    INTEGER NOT NULL DEFAULT 0,
    stored_at  TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (source, channel, post_id)
);
CREATE INDEX posts_date ON posts (date);

CREATE VIRTUAL TABLE posts_fts USING fts5 (
    text, content = 'posts', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER posts_fts_insert AFTER INSERT ON posts BEGIN
    INSERT INTO posts_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER posts_fts_delete AFTER DELETE ON posts BEGIN
    INSERT INTO posts_fts (posts_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER posts_fts_update AFTER UPDATE OF text ON posts BEGIN
    INSERT INTO posts_fts (posts_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO posts_fts (rowid, text) VALUES (new.id, new.text);
END;

CREATE TABLE subscribers (
    chat_id        INTEGER PRIMARY KEY,
    name           TEXT NOT NULL DEFAULT '',
    active         INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    last_digest_at TEXT,
    blocked_at     TEXT
);

CREATE TABLE subscriptions (
    id         INTEGER PRIMARY KEY,
    chat_id    INTEGER NOT NULL REFERENCES subscribers (chat_id) ON DELETE CASCADE,
    query      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (chat_id, query)
);

-- The query text is copied so that digests and alerts can still name a query
-- that its subscriber has since removed.
CREATE TABLE matches (
    post_id         INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    subscription_id INTEGER NOT NULL,
    chat_id         INTEGER NOT NULL,
    query           TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (post_id, subscription_id)
);
CREATE INDEX matches_chat_time ON matches (chat_id, created_at);

-- One row per message to send. Alerts point at their post (one per chat and post);
-- digests carry their rendered text. A row is sent once sent_at is set, and set
-- aside (never retried) once failed_at is set.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('alert', 'digest')),
    chat_id         INTEGER NOT NULL,
    post_id         INTEGER REFERENCES posts (id),
    queries         TEXT NOT NULL DEFAULT '[]',
    spans           TEXT NOT NULL DEFAULT '[]',
    text            TEXT,
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    sent_at         TEXT,
    failed_at       TEXT,
    UNIQUE (kind, chat_id, post_id)
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
