-- The epoch of the vault key this device holds for each vault (1 until the
-- key is first rotated): every local version is wrapped under that key.
ALTER TABLE vaults ADD COLUMN key_epoch INTEGER NOT NULL DEFAULT 1;
