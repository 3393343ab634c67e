-- OpenK local vault, schema 2: sync state (DESIGN §4, §6). Ids, numbers and
-- hashes of ciphertext only.

-- Per item: the copy the server holds as far as this device knows, and
-- whether there are local changes to push.
CREATE TABLE item_sync (
    item_id  TEXT PRIMARY KEY NOT NULL,
    vault_id TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,  -- server revision of that copy (0: not on the server)
    version  INTEGER NOT NULL DEFAULT 0,  -- its item version (items or item_history hold it)
    hash     BLOB,                        -- SHA-256 of its ciphertext (NULL for a tombstone)
    deleted  INTEGER NOT NULL DEFAULT 0,  -- the server copy is a tombstone
    dirty    INTEGER NOT NULL DEFAULT 0   -- local changes not pushed yet
);
CREATE INDEX item_sync_vault ON item_sync(vault_id, dirty);

-- Per vault: how far this device has pulled and what it has seen.
CREATE TABLE sync_state (
    vault_id  TEXT PRIMARY KEY NOT NULL,
    cursor    INTEGER NOT NULL DEFAULT 0, -- highest server revision applied here
    counter   INTEGER NOT NULL DEFAULT 0, -- highest manifest counter seen
    last_sync INTEGER,                    -- unix ms of the last complete sync
    pending   TEXT                        -- a push sent but not confirmed (JSON)
);

-- Everything written before this schema is a local change to push.
INSERT INTO item_sync (item_id, vault_id, dirty) SELECT id, vault_id, 1 FROM items;
INSERT INTO item_sync (item_id, vault_id, dirty) SELECT item_id, vault_id, 1 FROM tombstones
    WHERE item_id NOT IN (SELECT item_id FROM item_sync);
