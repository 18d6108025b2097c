CREATE TABLE webhook_events (
    id              TEXT PRIMARY KEY,
    upload_id       TEXT NOT NULL,
    url             TEXT NOT NULL,
    event           TEXT NOT NULL,
    body            BLOB NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL DEFAULT 'pending',
    next_attempt_at INTEGER NOT NULL, -- unix milliseconds
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX webhook_events_due ON webhook_events (status, next_attempt_at);
