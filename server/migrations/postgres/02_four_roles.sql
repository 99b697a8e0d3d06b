ALTER TABLE accounts DROP CONSTRAINT accounts_role_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_role_check CHECK (role IN ('worker', 'operator', 'department', 'admin'));
ALTER TABLE accounts ADD COLUMN department_id text REFERENCES departments(id);
ALTER TABLE accounts ADD COLUMN disabled_at bigint;
CREATE TABLE devices (
    account_id        text NOT NULL REFERENCES accounts(id),
    device_id         text NOT NULL,
    first_seen        bigint NOT NULL,
    last_seen         bigint NOT NULL,
    revoked_at        bigint,
    wipe              text CHECK (wipe IN ('wipe', 'send_then_wipe')),
    wipe_requested_at bigint,
    wiped_at          bigint,
    PRIMARY KEY (account_id, device_id)
);
INSERT INTO devices (account_id, device_id, first_seen, last_seen)
    SELECT account_id, device_id, min(expires_at), max(expires_at) FROM tokens GROUP BY account_id, device_id;
CREATE TABLE sign_in_failures (
    key          text PRIMARY KEY,
    failures     bigint NOT NULL,
    locked_until bigint NOT NULL,
    updated_at   bigint NOT NULL
);
CREATE TABLE audit (
    id      bigserial PRIMARY KEY,
    at      bigint NOT NULL,
    actor   text NOT NULL,
    role    text NOT NULL,
    action  text NOT NULL,
    target  text,
    detail  text NOT NULL DEFAULT '{}',
    address text
);
CREATE INDEX audit_at ON audit(at);
