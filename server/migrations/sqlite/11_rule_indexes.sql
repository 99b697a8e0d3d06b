-- The phone's rules that look at other records (issue 21 item 8), by
-- index: what still lives in a household or place (it is not deleted then),
-- and a grid's residents by ID number (one live resident each).
CREATE INDEX records_resident_household ON records(json_extract(fields, '$.household_id'))
    WHERE entity = 'resident' AND deleted = 0;
CREATE INDEX records_household_unit ON records(json_extract(fields, '$.unit_id'))
    WHERE entity = 'household' AND deleted = 0;
CREATE INDEX records_place_parent ON records(json_extract(fields, '$.parent_id'))
    WHERE entity = 'place' AND deleted = 0;
CREATE INDEX records_resident_id_number ON records(grid_id, json_extract(fields, '$.id_number'))
    WHERE entity = 'resident' AND deleted = 0;
