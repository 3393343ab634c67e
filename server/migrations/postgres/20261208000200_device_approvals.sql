-- Device approval (issue 13): a new device asks to be let in; a signed-in
-- device of the account sees the request, both show a code bound to their
-- public keys, and the signed-in one sends the account's Secret Key sealed
-- to the new device's key. The server relays: it keeps public keys, nonces,
-- a commitment and the sealed box, and only a hash of the new device's
-- polling token. `account_id` is NULL for a request to an unknown email
-- (answered like any other, never approved).
CREATE TABLE approvals (
    id          TEXT PRIMARY KEY NOT NULL,
    account_id  TEXT REFERENCES accounts (id) ON DELETE CASCADE,
    device_name TEXT NOT NULL,
    platform    TEXT NOT NULL,
    pub_n       BYTEA NOT NULL,
    commitment  BYTEA NOT NULL,
    poll_hash   BYTEA NOT NULL,
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    claimed_by  TEXT,
    pub_a       BYTEA,
    nonce_a     BYTEA,
    nonce_n     BYTEA,
    sealed      BYTEA,
    decided_at  BIGINT
);
CREATE INDEX approvals_by_account ON approvals (account_id, created_at);
CREATE INDEX approvals_by_expiry ON approvals (expires_at);

-- What `openk device ls` shows besides the name: the platform a device
-- said it runs on, and which device approved it (NULL: signed in with the
-- Secret Key typed in).
ALTER TABLE devices ADD COLUMN platform TEXT;
ALTER TABLE devices ADD COLUMN approved_by TEXT;
