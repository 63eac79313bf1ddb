DELETE FROM server_meta WHERE key = 'audit_head';
DROP TABLE audit_log;
DROP FUNCTION xuncha_audit_append_only();
DROP TABLE inspections;
DROP INDEX hazards_deadline_idx;
ALTER TABLE hazards
    DROP COLUMN escalated_at,
    DROP COLUMN campaign_id,
    DROP COLUMN reopen_count,
    DROP COLUMN closed_by,
    DROP COLUMN verified_at,
    DROP COLUMN verified_by,
    DROP COLUMN classified_at,
    DROP COLUMN classified_by,
    DROP COLUMN equipment_stopped,
    DROP COLUMN rectification_note,
    DROP COLUMN commitments,
    DROP COLUMN proposed_level;
