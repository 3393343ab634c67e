-- OpenK local vault, schema 5: the vault header and the remote record carry
-- a MAC under a key derived from the account key. A vault made before this
-- has none; this marker tells its next unlock to compute them, once.
INSERT INTO meta (key, value) SELECT 'adopt_state_macs', x'01'
    WHERE EXISTS (SELECT 1 FROM meta WHERE key = 'header');
