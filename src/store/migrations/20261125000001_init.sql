-- OpenK local vault, schema 1. Never edit a shipped migration; add a new one.
-- Every column that could say anything about an item's contents is ciphertext.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
);

CREATE TABLE vaults (
    id          TEXT PRIMARY KEY NOT NULL,
    wrapped_key BLOB NOT NULL,   -- vault key wrapped by the account key
    meta        BLOB NOT NULL,   -- vault name etc., sealed with the vault key
    created_at  INTEGER NOT NULL
);

CREATE TABLE items (
    id          TEXT PRIMARY KEY NOT NULL,
    vault_id    TEXT NOT NULL REFERENCES vaults(id),
    version     INTEGER NOT NULL,
    wrapped_key BLOB NOT NULL,   -- item key wrapped by the vault key, bound to this version
    overview    BLOB NOT NULL,
    details     BLOB NOT NULL
);
CREATE INDEX items_vault ON items(vault_id);

-- Every earlier version of every item, kept until the item is purged.
CREATE TABLE item_history (
    item_id     TEXT NOT NULL,
    vault_id    TEXT NOT NULL,
    version     INTEGER NOT NULL,
    wrapped_key BLOB NOT NULL,
    overview    BLOB NOT NULL,
    details     BLOB NOT NULL,
    PRIMARY KEY (item_id, version)
);

-- Purged items: ids only, so that sync can tell other devices.
CREATE TABLE tombstones (
    item_id    TEXT PRIMARY KEY NOT NULL,
    vault_id   TEXT NOT NULL,
    version    INTEGER NOT NULL,
    deleted_at INTEGER NOT NULL
);
