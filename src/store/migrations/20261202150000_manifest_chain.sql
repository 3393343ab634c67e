-- OpenK local vault: per vault, the id (SHA-256 over the sealed bytes) of
-- the last manifest this device accepted, next to its counter. An equal
-- counter with another id is a fork; the next manifest must name this id
-- as the one it follows. NULL until the first sync after the upgrade.
ALTER TABLE sync_state ADD COLUMN manifest_id BLOB;
