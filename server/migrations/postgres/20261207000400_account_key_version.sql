-- The account key's version: raised by each rotation of the account key
-- (every own vault key and the private keys re-wrapped under the new one,
-- in one transaction).
ALTER TABLE accounts ADD COLUMN account_key_version BIGINT NOT NULL DEFAULT 1;
