-- Photo evidence. Bytes arrive over tus (`uploads`, not synced: they belong to one user and
-- one upload), are stored once per SHA-256 (`blobs`, content-addressed, whoever uploaded
-- them), and are attached to hazards by synced `evidence` rows that may come first and stay
-- `pending` until their blob is complete.
CREATE TABLE uploads (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    length BIGINT NOT NULL,
    upload_offset BIGINT NOT NULL DEFAULT 0,
    concat TEXT NOT NULL CHECK (concat IN ('none', 'partial', 'final')),
    -- For a final upload: the ids of its partial uploads, in order (JSON array).
    parts TEXT,
    sha256 TEXT,
    filename TEXT,
    content_type TEXT,
    metadata TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'complete')),
    -- A PATCH in progress holds the upload until this time (several app servers).
    locked_until TIMESTAMP,
    lock_token TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    completed_at TIMESTAMP
);
CREATE INDEX uploads_expires_idx ON uploads (state, expires_at);

CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY NOT NULL,
    size BIGINT NOT NULL,
    format TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    taken_at TIMESTAMP,
    gps_lat DOUBLE PRECISION,
    gps_lon DOUBLE PRECISION,
    orientation INTEGER NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE evidence (
    id TEXT PRIMARY KEY NOT NULL,
    hazard_id TEXT NOT NULL REFERENCES hazards (id),
    -- Denormalised from the hazard for scope filters.
    unit_id TEXT NOT NULL REFERENCES units (id),
    region_code TEXT NOT NULL,
    inspection_id TEXT,
    item_code TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('finding', 'rectification', 'verification')),
    sha256 TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'complete')),
    device_time TIMESTAMP,
    gps_lat DOUBLE PRECISION,
    gps_lon DOUBLE PRECISION,
    -- From the photo's EXIF once its blob is complete (the device's own gps is above).
    taken_at TIMESTAMP,
    exif_gps_lat DOUBLE PRECISION,
    exif_gps_lon DOUBLE PRECISION,
    orientation INTEGER,
    width INTEGER,
    height INTEGER,
    uploaded_by TEXT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX evidence_hazard_idx ON evidence (hazard_id);
CREATE INDEX evidence_sha_idx ON evidence (sha256);
CREATE INDEX evidence_version_id_idx ON evidence (version, id);
CREATE INDEX evidence_unit_idx ON evidence (unit_id);
CREATE INDEX evidence_region_version_idx ON evidence (region_code, version, id);

CREATE TRIGGER evidence_sync_guard BEFORE INSERT OR UPDATE OR DELETE ON evidence
    FOR EACH ROW EXECUTE FUNCTION xuncha_sync_guard();
