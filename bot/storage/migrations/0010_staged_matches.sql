-- The ingest-at-scale issue, continued: even clustered by post, every match still wrote one
-- entry into the index by chat (`matches_chat_time`), and the chats of one post are
-- scattered over that index: a post matching 500 subscriptions dirtied ~500 of its pages,
-- each written to the WAL at the post's commit (40% of ingest's time at 10,000
-- subscriptions). A post's matches now go here first, clustered by post and with no index
-- by chat (a few pages per post), and are moved into `matches` in batches sorted by chat
-- (`Storage.merge_matches`): a batch touches each chat's page of the index once, not once
-- per post. Everything that reads matches by chat merges first; the edit check and
-- retention's counts read both tables. Committed with the post: a crash loses nothing.
CREATE TABLE staged_matches (
    post_id         INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    subscription_id INTEGER NOT NULL,
    chat_id         INTEGER NOT NULL,
    query           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,  -- microseconds since the epoch, UTC
    PRIMARY KEY (post_id, subscription_id)
) WITHOUT ROWID;
