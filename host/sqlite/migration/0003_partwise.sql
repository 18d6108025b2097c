-- Part-wise delivery: each part goes to the backend as soon as it is staged.
--
-- uploads.delivery_mode: '' delivers the whole file through Put at complete; 'parts' sends
-- each part with PutPart under delivery_handle (opaque, from BeginObject; NULL until begun).
-- uploads.hashed_parts: parts 0..hashed_parts-1 are in the whole-file SHA-256, whose state
-- after part n is upload_parts.hash_after (a marshalled crypto/sha256 state).
-- upload_parts.version counts the versions of a part staged; a receipt or hash state is
-- only recorded for the version it was computed from. upload_parts.receipt is the
-- backend's receipt of the part (NULL: not delivered). upload_parts.note says why a part
-- went back to pending.
ALTER TABLE uploads ADD COLUMN delivery_mode TEXT NOT NULL DEFAULT '';
ALTER TABLE uploads ADD COLUMN delivery_handle BLOB;
ALTER TABLE uploads ADD COLUMN hashed_parts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE uploads ADD COLUMN delivery_error TEXT NOT NULL DEFAULT '';

ALTER TABLE upload_parts ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE upload_parts ADD COLUMN receipt BLOB;
ALTER TABLE upload_parts ADD COLUMN hash_after BLOB;
ALTER TABLE upload_parts ADD COLUMN note TEXT NOT NULL DEFAULT '';

-- Part-wise objects to abort in the backend (cancelled, expired, failed or replaced
-- uploads), retried until the backend confirms. handle may be empty: abort every
-- unfinished object under key.
CREATE TABLE backend_aborts (
    id              INTEGER PRIMARY KEY,
    upload_id       TEXT NOT NULL,
    object_key      TEXT NOT NULL,
    handle          BLOB NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL, -- unix milliseconds
    last_error      TEXT NOT NULL DEFAULT ''
) STRICT;
