CREATE TABLE uploads (
    id                 TEXT PRIMARY KEY,
    filename           TEXT NOT NULL,
    path               TEXT NOT NULL DEFAULT '',
    total_size         INTEGER NOT NULL,
    chunk_size         INTEGER NOT NULL,
    total_parts        INTEGER NOT NULL,
    uploaded_parts     INTEGER NOT NULL DEFAULT 0,
    status             TEXT NOT NULL DEFAULT 'pending',
    storage_backend    TEXT NOT NULL,
    checksum_sha256    TEXT NOT NULL DEFAULT '',
    delivered_sha256   TEXT NOT NULL DEFAULT '',
    final_path         TEXT NOT NULL DEFAULT '',
    finalization_error TEXT NOT NULL DEFAULT '',
    bytes_delivered    INTEGER NOT NULL DEFAULT 0,
    webhook_url        TEXT NOT NULL DEFAULT '',
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    completed_at       INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX uploads_status_expires ON uploads (status, expires_at);

CREATE TABLE upload_parts (
    upload_id       TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    part_number     INTEGER NOT NULL,
    size            INTEGER NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    checksum_sha256 TEXT NOT NULL DEFAULT '',
    uploaded_at     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (upload_id, part_number)
) STRICT, WITHOUT ROWID;
