-- Emergency access (issue 13): an owner grants a contact access after a
-- wait. The owner's account key is sealed (HPKE) to the contact's X25519
-- key on the owner's device; the server keeps the box, the owner's
-- signature over the grant and the contact's keys as signed, and releases
-- the box to the contact only once a request has waited `wait_secs`
-- without the owner denying it. State: granted, requested or released.
CREATE TABLE emergency_grants (
    id             TEXT PRIMARY KEY NOT NULL,
    owner_id       TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    contact_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role           TEXT NOT NULL,
    wait_secs      BIGINT NOT NULL,
    sealed         BYTEA NOT NULL,
    signature      BYTEA NOT NULL,
    contact_x25519 BYTEA NOT NULL,
    contact_ed25519 BYTEA NOT NULL,
    state          TEXT NOT NULL,
    requested_at   BIGINT,
    created_at     BIGINT NOT NULL,
    UNIQUE (owner_id, contact_id)
);
CREATE INDEX emergency_grants_contact ON emergency_grants (contact_id);
