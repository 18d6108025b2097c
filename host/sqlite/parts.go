package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
)

// Part returns part n of upload id, or host.ErrNoRecord.
func (db *DB) Part(ctx context.Context, id string, n int) (host.Part, error) {
	var p host.Part
	var status string
	var at int64
	err := db.r.QueryRowContext(ctx, `SELECT part_number, size, status, checksum_sha256, uploaded_at,
		version, receipt, hash_after, note, crc32c FROM upload_parts WHERE upload_id = ? AND part_number = ?`, id, n).
		Scan(&p.Number, &p.Size, &status, &p.SHA256, &at, &p.Version, &p.Receipt, &p.HashAfter, &p.Note, &p.CRC32C)
	if errors.Is(err, sql.ErrNoRows) {
		return p, host.ErrNoRecord
	}
	if err != nil {
		return p, fmt.Errorf("read part %d of %s: %w", n, id, err)
	}
	p.Status = host.PartStatus(status)
	if at != 0 {
		p.UploadedAt = unix(at)
	}
	return p, nil
}

// SetDeliveryMode records how upload id is delivered. Switching to DeliverWhole drops the
// part-wise state (handle, receipts, hash states).
func (db *DB) SetDeliveryMode(ctx context.Context, id string, mode host.DeliveryMode) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("set delivery mode of %s: %w", id, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE uploads SET delivery_mode = ?, delivery_handle = NULL, hashed_parts = 0,
		bytes_delivered = 0, delivery_error = '' WHERE id = ?`, string(mode), id); err != nil {
		return fmt.Errorf("set delivery mode of %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE upload_parts SET receipt = NULL, hash_after = NULL WHERE upload_id = ?`, id); err != nil {
		return fmt.Errorf("set delivery mode of %s: %w", id, err)
	}
	return tx.Commit()
}

// SetHandle records the backend's handle of upload id's part-wise object.
func (db *DB) SetHandle(ctx context.Context, id string, handle []byte) error {
	if _, err := db.w.ExecContext(ctx, `UPDATE uploads SET delivery_handle = ? WHERE id = ?`, handle, id); err != nil {
		return fmt.Errorf("record handle of %s: %w", id, err)
	}
	return nil
}

// SetDeliveryError records why the last background delivery of a part of id failed ("" clears it).
func (db *DB) SetDeliveryError(ctx context.Context, id, msg string) error {
	if _, err := db.w.ExecContext(ctx, `UPDATE uploads SET delivery_error = ? WHERE id = ?`, msg, id); err != nil {
		return fmt.Errorf("record delivery error of %s: %w", id, err)
	}
	return nil
}

// RecordDelivered stores the backend's receipt for version of part n of id. With
// hashAfter (the part was hashed on its way as the next part of the whole-file digest) it
// also records the hash state and advances hashed_parts past n. It reports false, changing
// nothing, when the part has another version by now (or the upload is gone).
//
// handle is the object the part was delivered to; if the upload's handle changed since,
// the receipt is void and nothing is recorded either.
func (db *DB) RecordDelivered(ctx context.Context, id string, n int, version int64, handle, receipt, hashAfter []byte) (bool, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("record delivery of part %d: %w", n, err)
	}
	defer tx.Rollback()
	var current []byte
	err = tx.QueryRowContext(ctx, `SELECT delivery_handle FROM uploads WHERE id = ?`, id).Scan(&current)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !bytes.Equal(current, handle)) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record delivery of part %d: %w", n, err)
	}
	var size int64
	var had []byte
	err = tx.QueryRowContext(ctx, `SELECT size, receipt FROM upload_parts WHERE upload_id = ? AND part_number = ? AND version = ?
		AND status = 'uploaded'`, id, n, version).Scan(&size, &had)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record delivery of part %d: %w", n, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE upload_parts SET receipt = ?, note = '' WHERE upload_id = ? AND part_number = ?`,
		receipt, id, n); err != nil {
		return false, fmt.Errorf("record delivery of part %d: %w", n, err)
	}
	if had == nil {
		if _, err := tx.ExecContext(ctx, `UPDATE uploads SET bytes_delivered = bytes_delivered + ?, delivery_error = ''
			WHERE id = ?`, size, id); err != nil {
			return false, fmt.Errorf("record delivery of part %d: %w", n, err)
		}
	}
	if hashAfter != nil {
		if ok, err := recordHashed(ctx, tx, id, n, hashAfter); err != nil || !ok {
			return false, err
		}
	}
	return true, tx.Commit()
}

// RecordHashed stores the whole-file hash state after version of part n of id and
// advances hashed_parts past n. It reports false, changing nothing, when the part has
// another version by now or n is not the next part to hash.
func (db *DB) RecordHashed(ctx context.Context, id string, n int, version int64, hashAfter []byte) (bool, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("record hash of part %d: %w", n, err)
	}
	defer tx.Rollback()
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM upload_parts WHERE upload_id = ? AND part_number = ? AND version = ?
		AND status = 'uploaded'`, id, n, version).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record hash of part %d: %w", n, err)
	}
	if ok, err := recordHashed(ctx, tx, id, n, hashAfter); err != nil || !ok {
		return false, err
	}
	return true, tx.Commit()
}

func recordHashed(ctx context.Context, tx *sql.Tx, id string, n int, hashAfter []byte) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE uploads SET hashed_parts = ? WHERE id = ? AND hashed_parts = ?`, n+1, id, n)
	if err != nil {
		return false, fmt.Errorf("record hash of part %d: %w", n, err)
	}
	if k, _ := res.RowsAffected(); k != 1 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE upload_parts SET hash_after = ? WHERE upload_id = ? AND part_number = ?`,
		hashAfter, id, n); err != nil {
		return false, fmt.Errorf("record hash of part %d: %w", n, err)
	}
	return true, nil
}

// Reset describes what ResetDelivery does to an upload whose part-wise object is gone or
// must be started again.
type Reset struct {
	// Lost parts go back to pending with Note: their only copy was in the backend. They
	// keep their checksum, which the bytes sent again must have.
	Lost []int
	Note string
	// HashedParts is where the whole-file digest goes on (parts before it keep their state).
	HashedParts int
	// Abort, when set, is queued: the old object to remove from the backend.
	Abort *host.BackendAbort
	// Restart puts every part back to pending with its checksum cleared and the
	// whole-file digest to its start (the file as sent is refused: it must be sent again).
	Restart bool
	At      time.Time
}

// ResetDelivery forgets upload id's part-wise object: the handle and every receipt are
// cleared, lost parts go back to pending, the whole-file digest goes on from r.HashedParts,
// and the old object's abort is queued, all in one transaction.
func (db *DB) ResetDelivery(ctx context.Context, id string, r Reset) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("reset delivery of %s: %w", id, err)
	}
	defer tx.Rollback()
	if r.Restart {
		if _, err := tx.ExecContext(ctx, `UPDATE upload_parts SET status = 'pending', checksum_sha256 = '', uploaded_at = 0,
			version = version + 1, hash_after = NULL, note = ? WHERE upload_id = ?`, r.Note, id); err != nil {
			return fmt.Errorf("reset delivery of %s: %w", id, err)
		}
		r.HashedParts = 0
	}
	for _, n := range r.Lost {
		// The checksum stays (see MarkPartPending).
		if _, err := tx.ExecContext(ctx, `UPDATE upload_parts SET status = 'pending', uploaded_at = 0,
			version = version + 1, note = ? WHERE upload_id = ? AND part_number = ?`, r.Note, id, n); err != nil {
			return fmt.Errorf("reset delivery of %s: %w", id, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE upload_parts SET receipt = NULL,
		hash_after = CASE WHEN part_number < ? THEN hash_after ELSE NULL END WHERE upload_id = ?`, r.HashedParts, id); err != nil {
		return fmt.Errorf("reset delivery of %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE uploads SET delivery_handle = NULL, hashed_parts = ?, bytes_delivered = 0,
		uploaded_parts = (SELECT COUNT(*) FROM upload_parts WHERE upload_id = ? AND status = 'uploaded'), updated_at = ?
		WHERE id = ?`, r.HashedParts, id, r.At.Unix(), id); err != nil {
		return fmt.Errorf("reset delivery of %s: %w", id, err)
	}
	if r.Abort != nil {
		if err := insertAbort(ctx, tx, r.Abort, r.At); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func insertAbort(ctx context.Context, tx *sql.Tx, a *host.BackendAbort, at time.Time) error {
	h := a.Handle
	if h == nil {
		h = []byte{}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO backend_aborts (upload_id, object_key, handle, next_attempt_at)
		VALUES (?, ?, ?, ?)`, a.UploadID, a.Key, h, at.UnixMilli()); err != nil {
		return fmt.Errorf("queue abort of %s: %w", a.Key, err)
	}
	return nil
}

// QueueAbort queues the abort of a part-wise object.
func (db *DB) QueueAbort(ctx context.Context, a *host.BackendAbort, at time.Time) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("queue abort: %w", err)
	}
	defer tx.Rollback()
	if err := insertAbort(ctx, tx, a, at); err != nil {
		return err
	}
	return tx.Commit()
}

// DueAborts returns up to limit queued aborts due at now.
func (db *DB) DueAborts(ctx context.Context, now time.Time, limit int) ([]host.BackendAbort, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, upload_id, object_key, handle, attempts FROM backend_aborts
		WHERE next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`, now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("read queued aborts: %w", err)
	}
	defer rows.Close()
	var out []host.BackendAbort
	for rows.Next() {
		var a host.BackendAbort
		if err := rows.Scan(&a.ID, &a.UploadID, &a.Key, &a.Handle, &a.Attempts); err != nil {
			return nil, fmt.Errorf("read queued aborts: %w", err)
		}
		if len(a.Handle) == 0 {
			a.Handle = nil
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// AbortDone removes a queued abort the backend confirmed.
func (db *DB) AbortDone(ctx context.Context, abortID int64) error {
	if _, err := db.w.ExecContext(ctx, `DELETE FROM backend_aborts WHERE id = ?`, abortID); err != nil {
		return fmt.Errorf("remove queued abort: %w", err)
	}
	return nil
}

// AbortFailed reschedules a queued abort.
func (db *DB) AbortFailed(ctx context.Context, abortID int64, next time.Time, msg string) error {
	if _, err := db.w.ExecContext(ctx, `UPDATE backend_aborts SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?
		WHERE id = ?`, next.UnixMilli(), msg, abortID); err != nil {
		return fmt.Errorf("reschedule queued abort: %w", err)
	}
	return nil
}

// PartwiseIDs returns the ids of part-wise uploads that may still have parts to deliver
// (pending, failed or finalizing).
func (db *DB) PartwiseIDs(ctx context.Context) ([]string, error) {
	return db.ids(ctx, `SELECT id FROM uploads WHERE delivery_mode = 'parts' AND status IN ('pending', 'failed', 'finalizing')`)
}

// UndeliveredParts counts uploaded parts of part-wise uploads the backend does not hold yet.
func (db *DB) UndeliveredParts(ctx context.Context) (int, error) {
	var n int
	err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM upload_parts p JOIN uploads u ON u.id = p.upload_id
		WHERE u.delivery_mode = 'parts' AND u.status IN ('pending', 'failed', 'finalizing')
		AND p.status = 'uploaded' AND p.receipt IS NULL`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count undelivered parts: %w", err)
	}
	return n, nil
}

// MarkPartPending puts version of part n of id back to pending with note (its staged copy
// is unusable and the backend does not hold it) and reports whether it did.
func (db *DB) MarkPartPending(ctx context.Context, id string, n int, version int64, note string, at time.Time) (bool, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("mark part %d pending: %w", n, err)
	}
	defer tx.Rollback()
	var delivered bool
	var size int64
	err = tx.QueryRowContext(ctx, `SELECT receipt IS NOT NULL, size FROM upload_parts WHERE upload_id = ? AND part_number = ?
		AND version = ? AND status = 'uploaded'`, id, n, version).Scan(&delivered, &size)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("mark part %d pending: %w", n, err)
	}
	// The checksum stays: a part already in the whole-file digest must come back with the
	// same bytes (see Service.commitPart), and its hash state stays valid.
	if _, err := tx.ExecContext(ctx, `UPDATE upload_parts SET status = 'pending', uploaded_at = 0,
		version = version + 1, receipt = NULL, note = ? WHERE upload_id = ? AND part_number = ?`,
		note, id, n); err != nil {
		return false, fmt.Errorf("mark part %d pending: %w", n, err)
	}
	if !delivered {
		size = 0
	}
	if _, err := tx.ExecContext(ctx, `UPDATE uploads SET uploaded_parts = uploaded_parts - 1, bytes_delivered = bytes_delivered - ?,
		updated_at = ? WHERE id = ?`, size, at.Unix(), id); err != nil {
		return false, fmt.Errorf("mark part %d pending: %w", n, err)
	}
	return true, tx.Commit()
}
