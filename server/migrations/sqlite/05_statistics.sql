-- The centre's statistics kept by month, grid and category (reported,
-- finished with a deadline, finished by it), moved on every incident write:
-- statistics over any period read these few rows, not every incident.
CREATE TABLE incident_months (
    month                  TEXT NOT NULL,
    grid_id                TEXT NOT NULL,
    category               TEXT NOT NULL,
    reported               INTEGER NOT NULL DEFAULT 0,
    finished_with_deadline INTEGER NOT NULL DEFAULT 0,
    finished_on_time       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, grid_id, category)
) WITHOUT ROWID;
INSERT INTO incident_months
    SELECT strftime('%Y-%m', reported_at / 1000 + 28800, 'unixepoch'), grid_id, category, count(*),
        count(*) FILTER (WHERE deadline_at IS NOT NULL AND finished_at IS NOT NULL),
        count(*) FILTER (WHERE deadline_at IS NOT NULL AND finished_at IS NOT NULL AND finished_at <= deadline_at)
    FROM incidents WHERE status <> 'draft' GROUP BY 1, 2, 3;
