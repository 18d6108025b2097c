package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
)

// insertEvent adds ev to the outbox inside tx.
func insertEvent(ctx context.Context, tx *sql.Tx, ev *host.WebhookEvent) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO webhook_events (id, upload_id, url, event, body, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ev.ID, ev.UploadID, ev.URL, ev.Event, ev.Body,
		ev.NextAt.UnixMilli(), ev.CreatedAt.Unix(), ev.CreatedAt.Unix())
	if err != nil {
		return fmt.Errorf("queue webhook %s: %w", ev.Event, err)
	}
	return nil
}

// DueEvents returns up to limit pending webhook events due at now, oldest first.
func (db *DB) DueEvents(ctx context.Context, now time.Time, limit int) ([]host.WebhookEvent, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, upload_id, url, event, body, attempts, next_attempt_at, created_at
		FROM webhook_events WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`, now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("read due webhooks: %w", err)
	}
	defer rows.Close()
	var out []host.WebhookEvent
	for rows.Next() {
		var ev host.WebhookEvent
		var next, created int64
		if err := rows.Scan(&ev.ID, &ev.UploadID, &ev.URL, &ev.Event, &ev.Body, &ev.Attempts, &next, &created); err != nil {
			return nil, fmt.Errorf("read due webhooks: %w", err)
		}
		ev.NextAt, ev.CreatedAt = time.UnixMilli(next).UTC(), unix(created)
		out = append(out, ev)
	}
	return out, rows.Err()
}

// RecordAttempt records one delivery attempt of event id: delivered, retry at next, or
// given up (failed) after too many attempts.
func (db *DB) RecordAttempt(ctx context.Context, id string, attempts int, status string, next time.Time, lastErr string, at time.Time) error {
	_, err := db.w.ExecContext(ctx, `UPDATE webhook_events SET attempts = ?, status = ?, next_attempt_at = ?, last_error = ?, updated_at = ?
		WHERE id = ?`, attempts, status, next.UnixMilli(), lastErr, at.Unix(), id)
	if err != nil {
		return fmt.Errorf("record webhook attempt: %w", err)
	}
	return nil
}

// Postpone moves the next attempt of event id to next if it is still pending with
// attempts attempts, and reports whether it did.
func (db *DB) Postpone(ctx context.Context, id string, attempts int, next time.Time) (bool, error) {
	res, err := db.w.ExecContext(ctx, `UPDATE webhook_events SET next_attempt_at = ?
		WHERE id = ? AND status = 'pending' AND attempts = ?`, next.UnixMilli(), id, attempts)
	if err != nil {
		return false, fmt.Errorf("postpone webhook: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("postpone webhook: %w", err)
	}
	return n == 1, nil
}

// NextEventAt returns when the earliest pending event is due, and false when none is pending.
func (db *DB) NextEventAt(ctx context.Context) (time.Time, bool, error) {
	var next sql.NullInt64
	if err := db.r.QueryRowContext(ctx, `SELECT MIN(next_attempt_at) FROM webhook_events WHERE status = 'pending'`).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("read next webhook: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(next.Int64), true, nil
}

// EventStatus returns the status and attempts of event id (for tests and diagnostics).
func (db *DB) EventStatus(ctx context.Context, id string) (status string, attempts int, err error) {
	err = db.r.QueryRowContext(ctx, `SELECT status, attempts FROM webhook_events WHERE id = ?`, id).Scan(&status, &attempts)
	return status, attempts, err
}

// DeleteOldEvents removes delivered and given-up events last touched before cutoff.
func (db *DB) DeleteOldEvents(ctx context.Context, cutoff time.Time) error {
	_, err := db.w.ExecContext(ctx, `DELETE FROM webhook_events WHERE status != 'pending' AND updated_at < ?`, cutoff.Unix())
	if err != nil {
		return fmt.Errorf("delete old webhooks: %w", err)
	}
	return nil
}
