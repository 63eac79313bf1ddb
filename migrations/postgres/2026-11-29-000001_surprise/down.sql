DROP INDEX assignments_sealed_reveal_idx;
DROP INDEX recusals_unit_idx;
DROP TABLE recusals;
DROP TABLE surprise_plan_targets;
DROP TABLE surprise_plans;
