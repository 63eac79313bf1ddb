-- App servers cache verified sessions. This counter moves whenever a cached session may have
-- become invalid (a session revoked or deleted, a user changed or deleted), whoever made the
-- change: another server, the CLI, or SQL by hand. Servers poll it.
INSERT INTO server_meta (key, value) VALUES ('auth_epoch', '0');

CREATE FUNCTION xuncha_auth_epoch_bump() RETURNS trigger AS $$
BEGIN
    UPDATE server_meta SET value = (value::BIGINT + 1)::TEXT WHERE key = 'auth_epoch';
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER auth_epoch_session_revoked AFTER UPDATE OF revoked_at ON device_sessions
    FOR EACH ROW WHEN (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at)
    EXECUTE FUNCTION xuncha_auth_epoch_bump();
CREATE TRIGGER auth_epoch_session_deleted AFTER DELETE ON device_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION xuncha_auth_epoch_bump();
CREATE TRIGGER auth_epoch_user_changed AFTER UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION xuncha_auth_epoch_bump();
