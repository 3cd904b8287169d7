-- The ingest-at-scale issue: a popular post matches hundreds of subscriptions, and every
-- row it writes into an index keyed by chat lands on a page of its own (the chats are
-- scattered), so a post's commit wrote ~4 pages per match. Two changes:

-- Matches are stored clustered by post (WITHOUT ROWID: the primary key is the table, no
-- second copy of it) with the time as an integer (microseconds since 1970-01-01 UTC, 8
-- bytes instead of 32 in the row and again in the chat index). About 45 bytes per match
-- with its index, instead of ~150.
CREATE TABLE matches_compact (
    post_id         INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    subscription_id INTEGER NOT NULL,
    chat_id         INTEGER NOT NULL,
    query           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,  -- microseconds since the epoch, UTC
    PRIMARY KEY (post_id, subscription_id)
) WITHOUT ROWID;
INSERT INTO matches_compact
    SELECT post_id, subscription_id, chat_id, query,
        CAST(strftime('%s', created_at) AS INTEGER) * 1000000
            + CAST(substr(created_at, 21, 6) AS INTEGER)
    FROM matches;
DROP TABLE matches;
ALTER TABLE matches_compact RENAME TO matches;
CREATE INDEX matches_chat_time ON matches (chat_id, created_at);

-- A post's new alerts are written here, one short row per chat, clustered by post (the
-- rows of one post share a few pages), and filed into the outbox (rows with delivery state,
-- indexed by chat) by the sender a batch at a time as it needs work: that costs what the
-- sender can send (~30 a second), not what ingest can match (hundreds of thousands an
-- hour). Committed with the post, so a crash loses and repeats nothing; the outbox's
-- counts, pruning and chat moves see these rows too.
CREATE TABLE fresh_alerts (
    post_id INTEGER NOT NULL REFERENCES posts (id),
    chat_id INTEGER NOT NULL,
    queries TEXT NOT NULL,  -- JSON list of the chat's queries that matched
    spans   TEXT NOT NULL,  -- JSON list of [start, end] to highlight
    PRIMARY KEY (post_id, chat_id)
) WITHOUT ROWID;
