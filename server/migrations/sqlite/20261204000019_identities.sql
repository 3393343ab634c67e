-- Accounts' published identities (DESIGN §7): the self-signature a client
-- makes with its Ed25519 key over the account id, email, key version and
-- both public keys. Opaque to the server, which publishes it with the keys;
-- clients verify it and pin the keys.
CREATE TABLE identities (
    account_id   TEXT PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key_version  INTEGER NOT NULL,
    signature    BLOB NOT NULL,
    published_at INTEGER NOT NULL
) STRICT;
