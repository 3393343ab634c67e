-- OpenK local vault, schema 3: per vault, what this device knows the server
-- holds (item id, version, tombstone flag, ciphertext hash: 57 bytes per
-- item) in one blob, so checking a manifest does not read every item_sync
-- row. Rebuilt from item_sync when absent.
ALTER TABLE sync_state ADD COLUMN lines BLOB;
