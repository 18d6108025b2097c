-- upload_parts.crc32c is the CRC-32C (Castagnoli) of a staged part, computed while it was
-- received beside its SHA-256. Reads of the staged copy (delivery, the whole-file digest)
-- check it against this instead of hashing the part again: the SHA-256 says what the
-- client sent, the CRC only whether the server's disk still holds it. NULL for parts
-- recorded before this column (they are checked by their SHA-256).
ALTER TABLE upload_parts ADD COLUMN crc32c INTEGER;
