-- Account recovery (issue 13): a recovery code, held only by the user,
-- derives an X25519 key pair and an auth key. The server keeps the public
-- key (signed by the account's identity key, so that devices that rotate
-- the account key seal the new one to the right key), the hash of the auth
-- key (which lets the code's holder set new credentials), and the account
-- key sealed to the public key: ciphertext only. One row per account; it
-- is deleted when the code is used.
CREATE TABLE account_recovery (
    account_id          TEXT PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    public_key          BLOB NOT NULL,
    signature           BLOB NOT NULL,
    auth_salt           BLOB NOT NULL,
    auth_hash           BLOB NOT NULL,
    sealed_account_key  BLOB NOT NULL,
    account_key_version INTEGER NOT NULL,
    created_at          INTEGER NOT NULL
) STRICT;
