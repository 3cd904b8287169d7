-- Messages handed to a sender are claimed: `claimed_by` is the sending worker's session (the
-- backend pid of its lock connection, bot/storage/postgres/coordination.py), and holds while
-- that session lives. Another sender skips a chat whose next messages are claimed by a live
-- worker, and takes a dead worker's claims over at once (at most the messages it had in
-- flight are sent again). Rows are chosen FOR UPDATE SKIP LOCKED, so two senders asking at
-- the same moment never get the same rows; recording an outcome ends the claim.
ALTER TABLE outbox ADD COLUMN claimed_by integer;
