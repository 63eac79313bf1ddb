DROP TRIGGER auth_epoch_user_changed ON users;
DROP TRIGGER auth_epoch_session_deleted ON device_sessions;
DROP TRIGGER auth_epoch_session_revoked ON device_sessions;
DROP FUNCTION xuncha_auth_epoch_bump();
DELETE FROM server_meta WHERE key = 'auth_epoch';
