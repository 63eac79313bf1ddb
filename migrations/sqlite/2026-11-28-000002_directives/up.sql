-- Synced. Enforcement actions (执法措施): a directive (指令书), an order to stop use, a
-- seal-up, a fine (article and amount), an interview (约谈), public exposure, a blacklisting,
-- a referral; each with its document number and state. Named `directives` on the wire.
CREATE TABLE directives (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('directive', 'stop_use', 'seal_up', 'fine', 'interview', 'exposure', 'blacklist', 'referral')),
    doc_no TEXT NOT NULL UNIQUE,
    unit_id TEXT NOT NULL REFERENCES units (id),
    equipment_id TEXT REFERENCES equipment (id),
    hazard_id TEXT REFERENCES hazards (id),
    inspection_id TEXT,
    region_code TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('issued', 'complied', 'revoked')),
    content TEXT NOT NULL,
    article TEXT,
    amount_yuan BIGINT,
    deadline TIMESTAMP,
    until_on DATE,
    issued_by TEXT NOT NULL REFERENCES users (id),
    issued_at TIMESTAMP NOT NULL,
    closed_by TEXT,
    closed_at TIMESTAMP,
    close_note TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX directives_version_idx ON directives (version, id);
CREATE INDEX directives_unit_idx ON directives (unit_id);
CREATE INDEX directives_region_version_idx ON directives (region_code, version, id);

CREATE TRIGGER directives_sync_guard_insert BEFORE INSERT ON directives
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table directives written outside sync_tx'); END;
CREATE TRIGGER directives_sync_guard_update BEFORE UPDATE ON directives
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1 AND seq = NEW.version)
BEGIN SELECT RAISE(ABORT, 'synced table directives written outside sync_tx'); END;
CREATE TRIGGER directives_sync_guard_delete BEFORE DELETE ON directives
WHEN NOT EXISTS (SELECT 1 FROM sync_clock WHERE id = 1 AND writing = 1)
BEGIN SELECT RAISE(ABORT, 'synced table directives written outside sync_tx'); END;
