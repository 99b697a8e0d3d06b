-- One schema for both engines (issue 22; storage::both_engines_keep_one_schema):
-- `blobs` loses `received` and `complete`, which PostgreSQL's never had (a
-- row is written only once its photo is whole; the incomplete ones went in
-- the step that made uploads), and expired tokens are found by index, as
-- PostgreSQL's always were (every sign-in removes them).
ALTER TABLE blobs DROP COLUMN received;
ALTER TABLE blobs DROP COLUMN complete;
CREATE INDEX IF NOT EXISTS tokens_expires ON tokens(expires_at);
