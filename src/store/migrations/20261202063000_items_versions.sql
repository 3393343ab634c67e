-- OpenK local vault, schema 4: the id and version of every item in a
-- covering index, so that noticing what another process changed
-- (`Store::item_versions`) reads a few MB instead of every ciphertext row
-- (about 6 MB against 140 MB for 100k items).
CREATE INDEX items_versions ON items(id, version);
