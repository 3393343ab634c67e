-- Shared vaults' key rotation (a member removed or gone): the epoch of the
-- vault key every live record is wrapped under now. A push sealed under
-- another epoch is refused, so nothing is written under a key a removed
-- member still has.
ALTER TABLE vaults ADD COLUMN key_epoch INTEGER NOT NULL DEFAULT 1;
