-- The hazard lifecycle to verified closure, inspection records, and the hash-chained audit log.

-- Hazards: who moved them along and what they carried at each step.
ALTER TABLE hazards ADD COLUMN proposed_level TEXT;
ALTER TABLE hazards ADD COLUMN commitments TEXT;
ALTER TABLE hazards ADD COLUMN rectification_note TEXT;
ALTER TABLE hazards ADD COLUMN equipment_stopped BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE hazards ADD COLUMN classified_by TEXT;
ALTER TABLE hazards ADD COLUMN classified_at TIMESTAMP;
ALTER TABLE hazards ADD COLUMN verified_by TEXT;
ALTER TABLE hazards ADD COLUMN verified_at TIMESTAMP;
ALTER TABLE hazards ADD COLUMN closed_by TEXT;
ALTER TABLE hazards ADD COLUMN reopen_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hazards ADD COLUMN campaign_id TEXT;
ALTER TABLE hazards ADD COLUMN escalated_at TIMESTAMP;
ALTER TABLE hazards ADD COLUMN rectification_submitted_by TEXT;
CREATE INDEX hazards_deadline_idx ON hazards (deadline);

-- Synced. One inspection record (现场检查记录) of an assignment. `results` is JSON: one entry
-- per checklist item (and piece of equipment, for per-equipment items). Read-only once
-- submitted; a correction is a new record naming the one it corrects.
CREATE TABLE inspections (
    id TEXT PRIMARY KEY NOT NULL,
    assignment_id TEXT NOT NULL REFERENCES assignments (id),
    unit_id TEXT NOT NULL REFERENCES units (id),
    region_code TEXT NOT NULL,
    team TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('in_progress', 'submitted')),
    started_by TEXT NOT NULL REFERENCES users (id),
    started_at TIMESTAMP NOT NULL,
    lat DOUBLE PRECISION,
    lng DOUBLE PRECISION,
    results TEXT NOT NULL,
    finished_at TIMESTAMP,
    signatory_name TEXT,
    refused_to_sign BOOLEAN NOT NULL,
    submitted_by TEXT,
    submitted_at TIMESTAMP,
    corrects_id TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX inspections_version_idx ON inspections (version, id);
CREATE INDEX inspections_unit_idx ON inspections (unit_id);
CREATE INDEX inspections_assignment_idx ON inspections (assignment_id);
CREATE INDEX inspections_region_version_idx ON inspections (region_code, version, id);

CREATE TRIGGER inspections_sync_guard_insert BEFORE INSERT ON inspections
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table inspections written outside sync_tx'); END;
CREATE TRIGGER inspections_sync_guard_update BEFORE UPDATE ON inspections
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table inspections written outside sync_tx'); END;
CREATE TRIGGER inspections_sync_guard_delete BEFORE DELETE ON inspections
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1)
BEGIN SELECT RAISE(ABORT, 'synced table inspections written outside sync_tx'); END;

-- Append-only, hash-chained: `hash` = SHA-256 over `prev_hash` and the entry's fields (see
-- audit::chain). `seq` runs 1, 2, 3, … without gaps; the newest entry is also recorded in
-- server_meta 'audit_head', so that cutting entries off the end is detected too.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY NOT NULL,
    at TIMESTAMP NOT NULL,
    actor_id TEXT,
    device_pk TEXT,
    action TEXT NOT NULL,
    entity_table TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    region_code TEXT,
    before TEXT,
    after TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity_table, entity_id, seq);
CREATE INDEX audit_log_region_idx ON audit_log (region_code, seq);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

INSERT INTO server_meta (key, value) VALUES ('audit_head', '0:');
