-- Who sent a photo's bytes (issue 21 item 9): a photo record's bytes are
-- served through it, and its incident complete, only once the account that
-- made the record sent them. Records and bytes from before are the legacy
-- account ''.
ALTER TABLE photo_refs ADD COLUMN account_id TEXT NOT NULL DEFAULT '';
CREATE TABLE blob_senders (
    sha256     TEXT NOT NULL,
    account_id TEXT NOT NULL,
    created_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sha256, account_id)
) WITHOUT ROWID;
CREATE INDEX blob_senders_account ON blob_senders(account_id, created_at);
INSERT INTO blob_senders (sha256, account_id) SELECT sha256, '' FROM blobs WHERE complete = 1;
-- The record each photo belongs to, so a record's photos are counted (at
-- most 9, as on the phone) by index.
ALTER TABLE photo_refs ADD COLUMN owner_id TEXT;
UPDATE photo_refs SET owner_id =
    (SELECT json_extract(r.fields, '$.owner.id') FROM records r WHERE r.id = photo_refs.photo_id);
CREATE INDEX photo_refs_owner ON photo_refs(owner_id);
