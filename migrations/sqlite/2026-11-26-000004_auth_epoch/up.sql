-- App servers cache verified sessions. This counter moves whenever a cached session may have
-- become invalid (a session revoked or deleted, a user changed or deleted), whoever made the
-- change: another server, the CLI, or SQL by hand. Servers poll it.
INSERT INTO server_meta (key, value) VALUES ('auth_epoch', '0');

CREATE TRIGGER auth_epoch_session_revoked AFTER UPDATE OF revoked_at ON device_sessions
WHEN NEW.revoked_at IS NOT OLD.revoked_at
BEGIN
    UPDATE server_meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'auth_epoch';
END;

CREATE TRIGGER auth_epoch_session_deleted AFTER DELETE ON device_sessions
BEGIN
    UPDATE server_meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'auth_epoch';
END;

CREATE TRIGGER auth_epoch_user_updated AFTER UPDATE ON users
BEGIN
    UPDATE server_meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'auth_epoch';
END;

CREATE TRIGGER auth_epoch_user_deleted AFTER DELETE ON users
BEGIN
    UPDATE server_meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'auth_epoch';
END;
