-- Pulls read each synced table in (version, id) order: one index serves the order and the
-- keyset position (a version index alone sorted every row of a large transaction per page).
DROP INDEX users_version_idx;
CREATE INDEX users_version_id_idx ON users (version, id);
DROP INDEX codes_version_idx;
CREATE INDEX codes_version_id_idx ON codes (version, id);
DROP INDEX units_version_idx;
CREATE INDEX units_version_id_idx ON units (version, id);
DROP INDEX equipment_version_idx;
CREATE INDEX equipment_version_id_idx ON equipment (version, id);
DROP INDEX checklist_templates_version_idx;
CREATE INDEX checklist_templates_version_id_idx ON checklist_templates (version, id);
DROP INDEX hazards_version_idx;
CREATE INDEX hazards_version_id_idx ON hazards (version, id);
DROP INDEX assignments_version_idx;
CREATE INDEX assignments_version_id_idx ON assignments (version, id);

-- A district's rows of the big tables in pull order (the region part of a scope).
CREATE INDEX units_region_version_idx ON units (region_code, version, id);
CREATE INDEX equipment_region_version_idx ON equipment (region_code, version, id);
CREATE INDEX hazards_region_version_idx ON hazards (region_code, version, id);
