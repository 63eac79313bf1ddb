DROP TABLE sync_conflicts;
ALTER TABLE hazards DROP COLUMN field_versions;
DROP TABLE sync_mutations;
DROP TABLE sync_scope_events;
DROP TABLE sync_tombstones;
DROP TABLE assignment_members;
DROP TABLE assignments;
DELETE FROM server_meta WHERE key = 'tombstones_pruned_through';
