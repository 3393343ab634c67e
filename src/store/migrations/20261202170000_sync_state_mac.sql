-- OpenK local vault: each vault's sync state (cursor, manifest
-- counter and id, known server lines) carries a MAC under the local-state
-- key, kept in the same row. Rows written before have none: the marker
-- tells the next unlock to compute them (with the header's and the remote
-- record's), once.
ALTER TABLE sync_state ADD COLUMN mac BLOB;
INSERT OR REPLACE INTO meta (key, value) SELECT 'adopt_state_macs', x'01'
    WHERE EXISTS (SELECT 1 FROM sync_state);
