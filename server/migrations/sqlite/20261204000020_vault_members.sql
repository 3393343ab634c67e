-- Shared vaults (DESIGN §7): who may use a vault besides its owner, with
-- which role, and the vault key sealed to them (opaque, HPKE); and the
-- vault's membership log, signed entries the clients verify (opaque here,
-- kept in order).
CREATE TABLE vault_members (
    vault_id   TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    status     TEXT NOT NULL,
    sealed_key BLOB NOT NULL,
    key_epoch  INTEGER NOT NULL,
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (vault_id, account_id)
) STRICT;
CREATE INDEX vault_members_account ON vault_members (account_id);

CREATE TABLE vault_log (
    vault_id  TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    entry     BLOB NOT NULL,
    signature BLOB NOT NULL,
    PRIMARY KEY (vault_id, seq)
) STRICT;
