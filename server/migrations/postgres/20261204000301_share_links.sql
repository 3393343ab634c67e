-- Share links (`openk share link`, DESIGN §7): one encrypted item snapshot
-- each. The key is in the link's URL fragment only, never here: the server
-- keeps the ciphertext, who made it, when it expires and how many views it
-- has left. A row is deleted when it expires or its last view is served
-- (on access and by the server's periodic sweep), or when it is revoked.
CREATE TABLE share_links (
    id          TEXT PRIMARY KEY NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    ciphertext  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    max_views   BIGINT,
    views       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX share_links_account ON share_links (account_id, created_at);
CREATE INDEX share_links_expiry ON share_links (expires_at);
