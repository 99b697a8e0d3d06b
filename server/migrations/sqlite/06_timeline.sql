-- An incident's timeline, read by the console.
CREATE INDEX records_event_incident ON records(json_extract(fields, '$.incident_id'))
    WHERE entity = 'incident_event';
