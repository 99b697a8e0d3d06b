-- The phone's rules that look at other records: as the SQLite engine's step.
CREATE INDEX records_resident_household ON records ((fields::jsonb ->> 'household_id'))
    WHERE entity = 'resident' AND NOT deleted;
CREATE INDEX records_household_unit ON records ((fields::jsonb ->> 'unit_id'))
    WHERE entity = 'household' AND NOT deleted;
CREATE INDEX records_place_parent ON records ((fields::jsonb ->> 'parent_id'))
    WHERE entity = 'place' AND NOT deleted;
CREATE INDEX records_resident_id_number ON records (grid_id, (fields::jsonb ->> 'id_number'))
    WHERE entity = 'resident' AND NOT deleted;
