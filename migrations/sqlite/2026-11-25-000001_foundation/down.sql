DROP TABLE login_throttle;
DROP TABLE refresh_tokens;
DROP TABLE device_sessions;
DROP TABLE devices;
DROP TABLE user_credentials;
DROP TABLE users;
DROP TABLE server_meta;
DROP TABLE sync_clock;
