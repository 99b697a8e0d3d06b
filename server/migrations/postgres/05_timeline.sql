-- An incident's timeline, read by the console.
CREATE INDEX records_event_incident ON records ((fields::jsonb ->> 'incident_id'))
    WHERE entity = 'incident_event';
