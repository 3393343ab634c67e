-- Item usage (issue 12): how often and when each device of an account used
-- which item, one opaque blob per (account, device), sealed by the client
-- with the account key. The server sees neither items nor times of use.
-- `revision` numbers the account's uploads (each one higher than every
-- other of the account's), so a client asks only for the blobs that changed
-- since it last looked. Rows of revoked devices stay: their uses still count.
CREATE TABLE item_usage (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    device_id  TEXT NOT NULL,
    revision   BIGINT NOT NULL,
    blob       BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, device_id)
);
CREATE INDEX item_usage_revision ON item_usage (account_id, revision);
