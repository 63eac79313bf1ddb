-- The hazard lifecycle to verified closure, inspection records, and the hash-chained audit log.

-- Hazards: who moved them along and what they carried at each step.
ALTER TABLE hazards
    ADD COLUMN proposed_level TEXT,
    ADD COLUMN commitments TEXT,
    ADD COLUMN rectification_note TEXT,
    ADD COLUMN equipment_stopped BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN classified_by TEXT,
    ADD COLUMN classified_at TIMESTAMP,
    ADD COLUMN verified_by TEXT,
    ADD COLUMN verified_at TIMESTAMP,
    ADD COLUMN closed_by TEXT,
    ADD COLUMN reopen_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN campaign_id TEXT,
    ADD COLUMN escalated_at TIMESTAMP,
    ADD COLUMN rectification_submitted_by TEXT;
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

CREATE TRIGGER inspections_sync_guard BEFORE INSERT OR UPDATE OR DELETE ON inspections
    FOR EACH ROW EXECUTE FUNCTION xuncha_sync_guard();

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

CREATE FUNCTION xuncha_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION xuncha_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION xuncha_audit_append_only();

INSERT INTO server_meta (key, value) VALUES ('audit_head', '0:');
