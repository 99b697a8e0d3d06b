-- The centre's statistics kept by month, grid and category (reported,
-- finished with a deadline, finished by it), moved on every incident write:
-- statistics over any period read these few rows, not every incident.
CREATE TABLE incident_months (
    month                  text NOT NULL,
    grid_id                text NOT NULL,
    category               text NOT NULL,
    reported               bigint NOT NULL DEFAULT 0,
    finished_with_deadline bigint NOT NULL DEFAULT 0,
    finished_on_time       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (month, grid_id, category)
);
INSERT INTO incident_months
    SELECT to_char(to_timestamp((reported_at + 28800000) / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM'), grid_id, category,
        count(*),
        count(*) FILTER (WHERE deadline_at IS NOT NULL AND finished_at IS NOT NULL),
        count(*) FILTER (WHERE deadline_at IS NOT NULL AND finished_at IS NOT NULL AND finished_at <= deadline_at)
    FROM incidents WHERE status <> 'draft' GROUP BY 1, 2, 3;
