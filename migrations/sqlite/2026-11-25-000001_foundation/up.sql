-- Foundation: the sync clock, server metadata, users, devices and their sessions.

-- The single logical clock of delta sync. Every write transaction that touches a synced
-- table bumps `seq` first (db::sync_tx) and stamps its rows with the new value. `writing`
-- is true only inside such a transaction (set with the bump, cleared just before commit),
-- so the guard triggers below can refuse any write to a synced table made another way.
CREATE TABLE sync_clock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    writing BOOLEAN NOT NULL DEFAULT 0
);
INSERT INTO sync_clock (id, seq, writing) VALUES (1, 0, 0);

-- Server-wide facts shared by every app server on this database: the database id (so a
-- sync cursor from another database is recognised) and generated secrets.
CREATE TABLE server_meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- Synced table (devices receive colleagues' id, display name and role).
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'inspector', 'unit')),
    region_code TEXT NOT NULL,
    unit_id TEXT,
    credential_no TEXT,
    active BOOLEAN NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX users_version_idx ON users (version);
CREATE INDEX users_region_idx ON users (region_code);

CREATE TRIGGER users_sync_guard_insert BEFORE INSERT ON users
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table users written outside sync_tx'); END;
CREATE TRIGGER users_sync_guard_update BEFORE UPDATE ON users
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table users written outside sync_tx'); END;
CREATE TRIGGER users_sync_guard_delete BEFORE DELETE ON users
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1)
BEGIN SELECT RAISE(ABORT, 'synced table users written outside sync_tx'); END;

-- Password hashes live apart from the synced users row: a password change is not a sync event.
CREATE TABLE user_credentials (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users (id),
    password_hash TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- A device as a user uses it; one row per (user, client device id). Holds the push queue position.
CREATE TABLE devices (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    device_id TEXT NOT NULL,
    name TEXT NOT NULL,
    last_mutation_seq BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    UNIQUE (user_id, device_id)
);

-- One login on one device. Access tokens name it (`sid`); revoking it cuts them off.
CREATE TABLE device_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    device_pk TEXT NOT NULL REFERENCES devices (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    revoked_reason TEXT
);
CREATE INDEX device_sessions_device_idx ON device_sessions (device_pk);
CREATE INDEX device_sessions_user_idx ON device_sessions (user_id);

-- Refresh tokens, stored as SHA-256 of the random token. Each works once (spent_at).
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES device_sessions (id),
    created_at TIMESTAMP NOT NULL,
    spent_at TIMESTAMP
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Failed-login counters per account ("user:<name>") and per address ("addr:<ip>").
CREATE TABLE login_throttle (
    key TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    window_started_at TIMESTAMP NOT NULL,
    blocked_until TIMESTAMP
);
CREATE INDEX login_throttle_window_idx ON login_throttle (window_started_at);
