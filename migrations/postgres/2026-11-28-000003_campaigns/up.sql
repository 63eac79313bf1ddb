-- Campaigns (专项行动) with their phases, and the task map (挂图作战): each task with its
-- lead and cooperating departments, target, milestones, deadline and progress. Managers'
-- planning data, read over REST (not synced to devices; assignments and hazards carry the
-- campaign id).
CREATE TABLE campaigns (
    id TEXT PRIMARY KEY NOT NULL,
    region_code TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    starts_on DATE NOT NULL,
    ends_on DATE NOT NULL,
    phases TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX campaigns_region_idx ON campaigns (region_code, id);

CREATE TABLE campaign_tasks (
    id TEXT PRIMARY KEY NOT NULL,
    campaign_id TEXT NOT NULL REFERENCES campaigns (id),
    title TEXT NOT NULL,
    lead_department TEXT NOT NULL,
    cooperating_departments TEXT NOT NULL,
    target TEXT NOT NULL,
    milestones TEXT NOT NULL,
    deadline DATE NOT NULL,
    progress INTEGER NOT NULL CHECK (progress BETWEEN 0 AND 100),
    done_on DATE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX campaign_tasks_campaign_idx ON campaign_tasks (campaign_id, id);
CREATE INDEX assignments_campaign_idx ON assignments (campaign_id);
CREATE INDEX hazards_campaign_idx ON hazards (campaign_id);
