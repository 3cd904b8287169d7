-- News between workers (bot/storage/postgres/coordination.py), sent by the database itself
-- whoever writes, delivered when the writing transaction commits (and only then).
--
-- A chat's subscriptions changed (added, removed, paused, moved, the chat blocked or back):
-- every worker re-reads that chat's subscriptions into its index. Identical notices within
-- one transaction arrive once.
CREATE FUNCTION dozor_chat_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('dozor_subscriptions', OLD.chat_id::text);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM pg_notify('dozor_subscriptions', NEW.chat_id::text);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER subscriptions_notify AFTER INSERT OR UPDATE OR DELETE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION dozor_chat_changed();
CREATE TRIGGER subscribers_notify AFTER UPDATE OF active, chat_id OR DELETE ON subscribers
    FOR EACH ROW EXECUTE FUNCTION dozor_chat_changed();

-- Something was queued to send: the leader's sender wakes now, not at its next look.
CREATE FUNCTION dozor_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dozor_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER fresh_alerts_notify AFTER INSERT ON fresh_alerts
    FOR EACH STATEMENT EXECUTE FUNCTION dozor_queued();
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION dozor_queued();
