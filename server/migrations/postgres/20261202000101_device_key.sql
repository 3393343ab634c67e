-- SHA-256 of the device key a device proves at login (32 random bytes that
-- only the device holds), so that its logins count in its own rate-limit
-- bucket. NULL until the device first logs in with one.
ALTER TABLE devices ADD COLUMN key_hash BYTEA;
