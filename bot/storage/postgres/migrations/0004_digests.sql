-- Digests: the chats due are read in pages keyed on (next_digest_at, chat_id), those whose
-- next digest is not worked out yet (NULL) first, by chat id. The key whole in one index
-- makes each page one range read, however many chats share a due time.
CREATE INDEX subscribers_digest_due ON subscribers (next_digest_at, chat_id) WHERE active;
