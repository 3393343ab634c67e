-- A shared vault's activity as this device learned it (item versions pulled
-- or pushed, purges): one row per item version, its description sealed with
-- the account key (nothing about items in plaintext), the author's signature
-- kept inside so the activity view checks it again.
CREATE TABLE activity (
    item_id  TEXT NOT NULL,
    version  INTEGER NOT NULL,
    deleted  INTEGER NOT NULL,           -- the row of a purge (its tombstone's version)
    vault_id TEXT NOT NULL,
    sealed   BLOB NOT NULL,
    PRIMARY KEY (item_id, version, deleted)
);
CREATE INDEX activity_vault ON activity(vault_id);
