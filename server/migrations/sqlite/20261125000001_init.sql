-- OpenK sync server schema (SQLite). Integers are Unix milliseconds or
-- counters, ids are hyphenated UUID text, booleans are 0/1 integers, and
-- every blob is opaque to the server (hashes or client ciphertext).

CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE accounts (
    id                   TEXT PRIMARY KEY NOT NULL,
    email                TEXT NOT NULL UNIQUE,
    kdf_memory_kib       INTEGER NOT NULL,
    kdf_iterations       INTEGER NOT NULL,
    kdf_parallelism      INTEGER NOT NULL,
    salt                 BLOB NOT NULL,
    auth_hash            BLOB NOT NULL,
    auth_salt            BLOB NOT NULL,
    wrapped_account_key  BLOB NOT NULL,
    public_x25519        BLOB NOT NULL,
    public_ed25519       BLOB NOT NULL,
    wrapped_private_keys BLOB NOT NULL,
    created_at           INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
    id           TEXT PRIMARY KEY NOT NULL,
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX devices_by_account ON devices (account_id, created_at);

CREATE TABLE sessions (
    id                 TEXT PRIMARY KEY NOT NULL,
    account_id         TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    device_id          TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    access_hash        BLOB NOT NULL UNIQUE,
    access_expires_at  INTEGER NOT NULL,
    refresh_hash       BLOB NOT NULL UNIQUE,
    refresh_expires_at INTEGER NOT NULL,
    authenticated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_by_account ON sessions (account_id);
CREATE INDEX sessions_by_device ON sessions (device_id);
CREATE INDEX sessions_by_expiry ON sessions (refresh_expires_at);

-- Every refresh token a session was given, kept (marked used) until it
-- expires, so that presenting a used one again is detected as reuse.
CREATE TABLE refresh_tokens (
    hash       BLOB PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    used_at    INTEGER,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

CREATE TABLE vaults (
    id          TEXT PRIMARY KEY NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    wrapped_key BLOB NOT NULL,
    meta        BLOB NOT NULL,
    revision    INTEGER NOT NULL DEFAULT 0,
    manifest    BLOB,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX vaults_by_account ON vaults (account_id, created_at);

-- The current copy of every item (tombstones have empty blobs).
CREATE TABLE records (
    vault_id    TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    item_id     TEXT NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 0),
    revision    INTEGER NOT NULL,
    deleted     INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    wrapped_key BLOB NOT NULL,
    overview    BLOB NOT NULL,
    details     BLOB NOT NULL,
    PRIMARY KEY (vault_id, item_id)
) STRICT;
-- Each change gets its own vault revision, so (vault, revision) is unique;
-- pulls scan it in order.
CREATE UNIQUE INDEX records_by_revision ON records (vault_id, revision);

-- Superseded copies, for `item_history`.
CREATE TABLE record_history (
    vault_id    TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    item_id     TEXT NOT NULL,
    version     INTEGER NOT NULL,
    revision    INTEGER NOT NULL,
    wrapped_key BLOB NOT NULL,
    overview    BLOB NOT NULL,
    details     BLOB NOT NULL,
    PRIMARY KEY (vault_id, item_id, revision)
) STRICT;

-- The answer to every applied push, so that a retried batch (same client
-- change id) gets the same answer and nothing is applied twice.
CREATE TABLE push_log (
    vault_id         TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    client_change_id TEXT NOT NULL,
    response         TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (vault_id, client_change_id)
) STRICT;
CREATE INDEX push_log_by_age ON push_log (created_at);

CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    device_id  TEXT,
    address    TEXT,
    detail     TEXT
) STRICT;
CREATE INDEX audit_by_account ON audit (account_id, id);
