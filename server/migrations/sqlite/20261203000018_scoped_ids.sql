-- Ids a client chooses are labels inside its own account, never keys that
-- another account could squat or probe (docs/architecture.md, "Server ids").
--
-- Accounts and vaults get a server-made key: `id` stays the key every other
-- table joins on (new rows get a random one), and `client_id` keeps the id
-- the client chose (which its records' associated data name). Rows from
-- before keep their id as both.
ALTER TABLE accounts ADD COLUMN client_id TEXT NOT NULL DEFAULT '';
UPDATE accounts SET client_id = id;

ALTER TABLE vaults ADD COLUMN client_id TEXT NOT NULL DEFAULT '';
UPDATE vaults SET client_id = id;
CREATE UNIQUE INDEX vaults_by_client_id ON vaults (account_id, client_id);

-- Devices are keyed by (account, id): the same device id in two accounts is
-- two devices, and a session names its device within its account. SQLite
-- cannot change a primary key in place: devices, sessions (which reference
-- devices) and refresh_tokens (which reference sessions) are rebuilt. The
-- new tables are filled before the old ones are dropped, children first, so
-- that no ON DELETE CASCADE fires on the copied rows.
CREATE TABLE devices_new (
    id           TEXT NOT NULL,
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    revoked_at   INTEGER,
    key_hash     BLOB,
    PRIMARY KEY (account_id, id)
) STRICT;
INSERT INTO devices_new (id, account_id, name, created_at, last_seen_at, revoked_at, key_hash)
    SELECT id, account_id, name, created_at, last_seen_at, revoked_at, key_hash FROM devices;

CREATE TABLE sessions_new (
    id                 TEXT PRIMARY KEY NOT NULL,
    account_id         TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    device_id          TEXT NOT NULL,
    access_hash        BLOB NOT NULL UNIQUE,
    access_expires_at  INTEGER NOT NULL,
    refresh_hash       BLOB NOT NULL UNIQUE,
    refresh_expires_at INTEGER NOT NULL,
    authenticated_at   INTEGER NOT NULL,
    FOREIGN KEY (account_id, device_id) REFERENCES devices_new (account_id, id) ON DELETE CASCADE
) STRICT;
INSERT INTO sessions_new SELECT id, account_id, device_id, access_hash, access_expires_at,
    refresh_hash, refresh_expires_at, authenticated_at FROM sessions;

CREATE TABLE refresh_tokens_new (
    hash       BLOB PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions_new (id) ON DELETE CASCADE,
    used_at    INTEGER,
    expires_at INTEGER NOT NULL
) STRICT;
INSERT INTO refresh_tokens_new SELECT hash, session_id, used_at, expires_at FROM refresh_tokens;

DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE devices;
ALTER TABLE devices_new RENAME TO devices;
ALTER TABLE sessions_new RENAME TO sessions;
ALTER TABLE refresh_tokens_new RENAME TO refresh_tokens;

CREATE INDEX devices_by_account ON devices (account_id, created_at);
CREATE INDEX sessions_by_account ON sessions (account_id);
CREATE INDEX sessions_by_device ON sessions (account_id, device_id);
CREATE INDEX sessions_by_expiry ON sessions (refresh_expires_at);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);
