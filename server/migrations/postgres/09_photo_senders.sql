-- Who sent a photo's bytes: as the SQLite engine's step of the same name.
ALTER TABLE photo_refs ADD COLUMN account_id text NOT NULL DEFAULT '';
CREATE TABLE blob_senders (
    sha256     text NOT NULL,
    account_id text NOT NULL,
    created_at bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (sha256, account_id)
);
CREATE INDEX blob_senders_account ON blob_senders(account_id, created_at);
INSERT INTO blob_senders (sha256, account_id) SELECT sha256, '' FROM blobs;
ALTER TABLE photo_refs ADD COLUMN owner_id text;
UPDATE photo_refs p SET owner_id = r.fields::jsonb -> 'owner' ->> 'id' FROM records r WHERE r.id = p.photo_id;
CREATE INDEX photo_refs_owner ON photo_refs(owner_id);
