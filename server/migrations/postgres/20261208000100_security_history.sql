-- The account's security history (issue 13): a hash chain of entries
-- signed by the account's own identity key on its devices (device added or
-- revoked, password, Secret Key or key changes, members, ...). The server
-- stores each entry's opaque signed bytes and their SHA-256 (`hash`, what
-- the next entry names as its `prev`); it checks only that an append names
-- the head (seq = head + 1, prev = the head's hash). It cannot forge an
-- entry (it has no key), and the clients verify the chain.
CREATE TABLE security_history (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    entry      BYTEA NOT NULL,
    hash       BYTEA NOT NULL,
    stored_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, seq)
);
