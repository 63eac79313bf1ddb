-- Unannounced checks (四不两直): plans, the draw's record, and declared recusals.
-- Managers' data, read over REST (not synced to devices; the drawn assignments are).
--
-- `seed` is the secret the draw is a function of; only its SHA-256 (`seed_commitment`) is
-- shown before the window closes. `snapshot` is the pool the draw read (canonical text,
-- hashed to `pool_hash`) and `result` the canonical outcome: verification recomputes the
-- draw from these two, so later changes to the registry do not change its answer.
CREATE TABLE surprise_plans (
    id TEXT PRIMARY KEY NOT NULL,
    title TEXT NOT NULL,
    region_code TEXT NOT NULL,
    campaign_id TEXT REFERENCES campaigns (id),
    window_start TIMESTAMP NOT NULL,
    window_end TIMESTAMP NOT NULL,
    target_count INTEGER NOT NULL,
    team_size INTEGER NOT NULL CHECK (team_size >= 2),
    min_key_share INTEGER,
    reveal_mode TEXT NOT NULL CHECK (reveal_mode IN ('window_start', 'dispatch')),
    criteria TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'drawn')),
    seed TEXT NOT NULL,
    seed_commitment TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    pool_hash TEXT,
    snapshot TEXT,
    result TEXT,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    drawn_by TEXT REFERENCES users (id),
    drawn_at TIMESTAMP
);
CREATE INDEX surprise_plans_region_idx ON surprise_plans (region_code, id);

-- The assignments a draw created, in draw order.
CREATE TABLE surprise_plan_targets (
    plan_id TEXT NOT NULL REFERENCES surprise_plans (id),
    ordinal INTEGER NOT NULL,
    assignment_id TEXT NOT NULL UNIQUE REFERENCES assignments (id),
    PRIMARY KEY (plan_id, ordinal)
);

-- An inspector's conflict of interest with a unit: declared, former or current employment,
-- kinship. Draws never put the inspector on a team for that unit.
CREATE TABLE recusals (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    unit_id TEXT NOT NULL REFERENCES units (id),
    reason TEXT NOT NULL CHECK (reason IN ('declared', 'employment', 'kinship')),
    note TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (user_id, unit_id)
);
CREATE INDEX recusals_unit_idx ON recusals (unit_id);
CREATE INDEX assignments_sealed_reveal_idx ON assignments (sealed, reveal_at);
-- The snapshot (a few MB for a city) is stored as it is: compressing it with pglz on every
-- draw cost ~60 ms of a 240 ms draw.
ALTER TABLE surprise_plans ALTER COLUMN snapshot SET STORAGE EXTERNAL;
