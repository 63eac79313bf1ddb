DROP TRIGGER auth_epoch_user_deleted;
DROP TRIGGER auth_epoch_user_updated;
DROP TRIGGER auth_epoch_session_deleted;
DROP TRIGGER auth_epoch_session_revoked;
DELETE FROM server_meta WHERE key = 'auth_epoch';
