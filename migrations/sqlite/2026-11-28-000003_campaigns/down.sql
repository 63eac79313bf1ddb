DROP INDEX hazards_campaign_idx;
DROP INDEX assignments_campaign_idx;
DROP TABLE campaign_tasks;
DROP TABLE campaigns;
