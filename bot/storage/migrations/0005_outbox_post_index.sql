-- Deleting a post (retention) checks the outbox rows that point at it: without an index
-- each 500-post batch scanned the whole outbox and held the write lock for seconds.
CREATE INDEX outbox_post ON outbox (post_id);
