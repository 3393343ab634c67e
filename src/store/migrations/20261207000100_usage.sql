-- OpenK local vault: item usage (issue 12), sealed with the account key;
-- nothing here says in plaintext which items were used or when.
--
-- This device's uses not yet added to its counters: one sealed event per
-- use, so recording a use is one small insert that decrypts nothing.
CREATE TABLE usage_events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    sealed BLOB NOT NULL
);
-- Each device's counters: this device's own (`generation` counts the times
-- its events were added in; `uploaded` = the server holds this generation)
-- and the other devices' as the server last gave them (`generation` read
-- from inside the blob when it was accepted, `revision` the server's
-- number of that upload). The server cursor is `meta.usage_cursor`.
CREATE TABLE usage_counters (
    device_id  TEXT PRIMARY KEY NOT NULL,
    sealed     BLOB NOT NULL,
    generation INTEGER NOT NULL,
    revision   INTEGER NOT NULL DEFAULT 0,
    uploaded   INTEGER NOT NULL DEFAULT 0
);
