-- One-time registration codes (`openk-server invite`) for
-- `--registration invite-only`. Only the SHA-256 of a code is kept; a code
-- is used up by the registration that presents it (in the same
-- transaction that creates the account).
CREATE TABLE invites (
    code_hash  BYTEA PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    used_by    TEXT
);
