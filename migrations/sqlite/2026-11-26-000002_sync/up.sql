-- Delta sync: assignments (the first work table) and the sync log: tombstones of deleted
-- rows, scope events (a row entering or leaving someone's scope), and the push mutation log.

-- Synced. `team` is the synced view of the members (JSON array of user ids, sorted);
-- assignment_members is the same set in a form SQL can join on.
CREATE TABLE assignments (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('routine', 'campaign', 'surprise', 'lookback', 'joint', 'complaint')),
    unit_id TEXT NOT NULL REFERENCES units (id),
    equipment_ids TEXT NOT NULL,
    region_code TEXT NOT NULL,
    team TEXT NOT NULL,
    window_start TIMESTAMP NOT NULL,
    window_end TIMESTAMP NOT NULL,
    campaign_id TEXT,
    notes TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('scheduled', 'dispatched', 'in_progress', 'submitted', 'closed', 'cancelled')),
    sealed BOOLEAN NOT NULL,
    reveal_at TIMESTAMP,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX assignments_version_idx ON assignments (version);
CREATE INDEX assignments_unit_idx ON assignments (unit_id);
CREATE INDEX assignments_region_idx ON assignments (region_code, id);

CREATE TABLE assignment_members (
    assignment_id TEXT NOT NULL REFERENCES assignments (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    PRIMARY KEY (assignment_id, user_id)
);
CREATE INDEX assignment_members_user_idx ON assignment_members (user_id);

-- A deleted row of a synced table, with what decided who could see it: its region, its unit,
-- and (JSON array) the users whose own it was, e.g. an assignment's team.
CREATE TABLE sync_tombstones (
    table_name TEXT NOT NULL,
    row_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    region_code TEXT,
    unit_id TEXT,
    user_ids TEXT,
    deleted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (table_name, row_id, version)
);
CREATE INDEX sync_tombstones_version_idx ON sync_tombstones (version);

-- A row entered (`enter`) or left (`exit`) the scope of one user (`user_id`: team changes,
-- reveals), or left a region (`region_code`, the old one) or a unit (`unit_id`, the old one).
-- Pulls turn entries into full puts of the row and what hangs off it, and exits into evicts.
CREATE TABLE sync_scope_events (
    id TEXT PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('enter', 'exit')),
    table_name TEXT NOT NULL,
    row_id TEXT NOT NULL,
    user_id TEXT,
    region_code TEXT,
    unit_id TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX sync_scope_events_version_idx ON sync_scope_events (version);

-- Push mutations as applied: the stored result answers a retried push.
CREATE TABLE sync_mutations (
    device_pk TEXT NOT NULL REFERENCES devices (id),
    seq BIGINT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT NOT NULL,
    version BIGINT NOT NULL,
    applied_at TIMESTAMP NOT NULL,
    PRIMARY KEY (device_pk, seq)
);

-- Where tombstones have been pruned up to: a cursor from before it must reset.
INSERT INTO server_meta (key, value) VALUES ('tombstones_pruned_through', '0');

-- Only db::sync_tx writes synced tables and the sync log.
CREATE TRIGGER assignments_sync_guard_insert BEFORE INSERT ON assignments
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table assignments written outside sync_tx'); END;
CREATE TRIGGER assignments_sync_guard_update BEFORE UPDATE ON assignments
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table assignments written outside sync_tx'); END;
CREATE TRIGGER assignments_sync_guard_delete BEFORE DELETE ON assignments
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1)
BEGIN SELECT RAISE(ABORT, 'synced table assignments written outside sync_tx'); END;
CREATE TRIGGER assignment_members_sync_guard_insert BEFORE INSERT ON assignment_members
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1)
BEGIN SELECT RAISE(ABORT, 'table assignment_members written outside sync_tx'); END;
CREATE TRIGGER assignment_members_sync_guard_update BEFORE UPDATE ON assignment_members
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1)
BEGIN SELECT RAISE(ABORT, 'table assignment_members written outside sync_tx'); END;
CREATE TRIGGER assignment_members_sync_guard_delete BEFORE DELETE ON assignment_members
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1)
BEGIN SELECT RAISE(ABORT, 'table assignment_members written outside sync_tx'); END;
CREATE TRIGGER sync_tombstones_sync_guard_insert BEFORE INSERT ON sync_tombstones
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'sync log sync_tombstones written outside sync_tx'); END;
CREATE TRIGGER sync_tombstones_sync_guard_update BEFORE UPDATE ON sync_tombstones
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'sync log sync_tombstones written outside sync_tx'); END;
CREATE TRIGGER sync_scope_events_sync_guard_insert BEFORE INSERT ON sync_scope_events
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'sync log sync_scope_events written outside sync_tx'); END;
CREATE TRIGGER sync_scope_events_sync_guard_update BEFORE UPDATE ON sync_scope_events
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'sync log sync_scope_events written outside sync_tx'); END;

-- Per-field versions of hazards (JSON: field -> version of its last change), so that edits
-- made offline against an older version merge field by field.
ALTER TABLE hazards ADD COLUMN field_versions TEXT NOT NULL DEFAULT '{}';

-- The losing side of a same-field edit, kept for a manager to review.
CREATE TABLE sync_conflicts (
    id TEXT PRIMARY KEY NOT NULL,
    table_name TEXT NOT NULL,
    row_id TEXT NOT NULL,
    field TEXT NOT NULL,
    kept_value TEXT NOT NULL,
    lost_value TEXT NOT NULL,
    winner TEXT NOT NULL CHECK (winner IN ('server', 'device')),
    user_id TEXT NOT NULL,
    device_pk TEXT NOT NULL,
    mutation_seq BIGINT NOT NULL,
    base_version BIGINT NOT NULL,
    version BIGINT NOT NULL,
    region_code TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX sync_conflicts_region_idx ON sync_conflicts (region_code, id);
