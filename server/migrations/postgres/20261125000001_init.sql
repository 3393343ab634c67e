-- OpenK sync server schema (PostgreSQL). Integers are Unix milliseconds or
-- counters, ids are hyphenated UUID text, booleans are 0/1 integers, and
-- every blob is opaque to the server (hashes or client ciphertext).

CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value BYTEA NOT NULL
);

CREATE TABLE accounts (
    id                   TEXT PRIMARY KEY NOT NULL,
    email                TEXT NOT NULL UNIQUE,
    kdf_memory_kib       BIGINT NOT NULL,
    kdf_iterations       BIGINT NOT NULL,
    kdf_parallelism      BIGINT NOT NULL,
    salt                 BYTEA NOT NULL,
    auth_hash            BYTEA NOT NULL,
    auth_salt            BYTEA NOT NULL,
    wrapped_account_key  BYTEA NOT NULL,
    public_x25519        BYTEA NOT NULL,
    public_ed25519       BYTEA NOT NULL,
    wrapped_private_keys BYTEA NOT NULL,
    created_at           BIGINT NOT NULL
);

CREATE TABLE devices (
    id           TEXT PRIMARY KEY NOT NULL,
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX devices_by_account ON devices (account_id, created_at);

CREATE TABLE sessions (
    id                 TEXT PRIMARY KEY NOT NULL,
    account_id         TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    device_id          TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    access_hash        BYTEA NOT NULL UNIQUE,
    access_expires_at  BIGINT NOT NULL,
    refresh_hash       BYTEA NOT NULL UNIQUE,
    refresh_expires_at BIGINT NOT NULL,
    authenticated_at   BIGINT NOT NULL
);
CREATE INDEX sessions_by_account ON sessions (account_id);
CREATE INDEX sessions_by_device ON sessions (device_id);
CREATE INDEX sessions_by_expiry ON sessions (refresh_expires_at);

-- Every refresh token a session was given, kept (marked used) until it
-- expires, so that presenting a used one again is detected as reuse.
CREATE TABLE refresh_tokens (
    hash       BYTEA PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    used_at    BIGINT,
    expires_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

CREATE TABLE vaults (
    id          TEXT PRIMARY KEY NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    wrapped_key BYTEA NOT NULL,
    meta        BYTEA NOT NULL,
    revision    BIGINT NOT NULL DEFAULT 0,
    manifest    BYTEA,
    created_at  BIGINT NOT NULL
);
CREATE INDEX vaults_by_account ON vaults (account_id, created_at);

-- The current copy of every item (tombstones have empty blobs).
CREATE TABLE records (
    vault_id    TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    item_id     TEXT NOT NULL,
    version     BIGINT NOT NULL CHECK (version >= 0),
    revision    BIGINT NOT NULL,
    deleted     BIGINT NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    wrapped_key BYTEA NOT NULL,
    overview    BYTEA NOT NULL,
    details     BYTEA NOT NULL,
    PRIMARY KEY (vault_id, item_id)
);
-- Each change gets its own vault revision, so (vault, revision) is unique;
-- pulls scan it in order.
CREATE UNIQUE INDEX records_by_revision ON records (vault_id, revision);

-- Superseded copies, for `item_history`.
CREATE TABLE record_history (
    vault_id    TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    item_id     TEXT NOT NULL,
    version     BIGINT NOT NULL,
    revision    BIGINT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    overview    BYTEA NOT NULL,
    details     BYTEA NOT NULL,
    PRIMARY KEY (vault_id, item_id, revision)
);

-- The answer to every applied push, so that a retried batch (same client
-- change id) gets the same answer and nothing is applied twice.
CREATE TABLE push_log (
    vault_id         TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    client_change_id TEXT NOT NULL,
    response         TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (vault_id, client_change_id)
);
CREATE INDEX push_log_by_age ON push_log (created_at);

CREATE TABLE audit (
    id         BIGSERIAL PRIMARY KEY,
    account_id TEXT NOT NULL,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    device_id  TEXT,
    address    TEXT,
    detail     TEXT
);
CREATE INDEX audit_by_account ON audit (account_id, id);
