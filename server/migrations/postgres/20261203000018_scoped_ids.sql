-- Ids a client chooses are labels inside its own account, never keys that
-- another account could squat or probe (docs/architecture.md, "Server ids").
--
-- Accounts and vaults get a server-made key: `id` stays the key every other
-- table joins on (new rows get a random one), and `client_id` keeps the id
-- the client chose (which its records' associated data name). Rows from
-- before keep their id as both.
ALTER TABLE accounts ADD COLUMN client_id TEXT NOT NULL DEFAULT '';
UPDATE accounts SET client_id = id;
ALTER TABLE accounts ALTER COLUMN client_id DROP DEFAULT;

ALTER TABLE vaults ADD COLUMN client_id TEXT NOT NULL DEFAULT '';
UPDATE vaults SET client_id = id;
ALTER TABLE vaults ALTER COLUMN client_id DROP DEFAULT;
CREATE UNIQUE INDEX vaults_by_client_id ON vaults (account_id, client_id);

-- Devices are keyed by (account, id): the same device id in two accounts is
-- two devices, and a session names its device within its account.
ALTER TABLE sessions DROP CONSTRAINT sessions_device_id_fkey;
ALTER TABLE devices DROP CONSTRAINT devices_pkey;
ALTER TABLE devices ADD PRIMARY KEY (account_id, id);
ALTER TABLE sessions ADD CONSTRAINT sessions_device_fkey
    FOREIGN KEY (account_id, device_id) REFERENCES devices (account_id, id) ON DELETE CASCADE;
DROP INDEX sessions_by_device;
CREATE INDEX sessions_by_device ON sessions (account_id, device_id);
