-- The MAC a client computes over a password change (HMAC-SHA256 under a key
-- derived from the account key, over the account id, KDF parameters, salt
-- and wrapped account key). Opaque to the server; NULL until the first
-- password change (the registration values are authenticated by the wrap).
ALTER TABLE accounts ADD COLUMN password_mac BLOB;
