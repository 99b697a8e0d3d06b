-- The open incidents by deadline: the overdue queue reads these few rows,
-- not every closed incident's.
CREATE INDEX incidents_open_deadline ON incidents(deadline_at, id)
    WHERE status IN ('reported', 'dispatched', 'accepted', 'returned');
