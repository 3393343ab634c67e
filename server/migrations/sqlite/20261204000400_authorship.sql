-- In a shared vault every item version carries its author's signature
-- (who, at which membership log entry, Ed25519 over the version): opaque to
-- the server, kept with the version and handed out with it; readers check it.
ALTER TABLE records ADD COLUMN authorship BLOB;
ALTER TABLE record_history ADD COLUMN authorship BLOB;
