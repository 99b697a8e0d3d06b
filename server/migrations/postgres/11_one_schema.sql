-- One schema for both engines: as the SQLite engine's step (this engine's
-- `blobs` never had the two columns, and it always had `tokens_expires`).
ALTER TABLE blobs DROP COLUMN IF EXISTS received;
ALTER TABLE blobs DROP COLUMN IF EXISTS complete;
CREATE INDEX IF NOT EXISTS tokens_expires ON tokens(expires_at);
