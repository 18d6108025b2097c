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

const uploadColumns = `id, filename, path, total_size, chunk_size, total_parts, uploaded_parts, status,
	storage_backend, checksum_sha256, delivered_sha256, final_path, finalization_error, bytes_delivered,
	webhook_url, created_at, updated_at, expires_at, completed_at,
	delivery_mode, delivery_handle, hashed_parts, delivery_error`

type scanner interface{ Scan(...any) error }

func scanUpload(s scanner) (*host.Upload, error) {
	var u host.Upload
	var status string
	var created, updated, expires, completed int64
	var mode string
	err := s.Scan(&u.ID, &u.Filename, &u.Path, &u.TotalSize, &u.ChunkSize, &u.TotalParts, &u.UploadedParts, &status,
		&u.StorageBackend, &u.ChecksumSHA256, &u.DeliveredSHA256, &u.FinalPath, &u.FinalizationError, &u.BytesDelivered,
		&u.WebhookURL, &created, &updated, &expires, &completed,
		&mode, &u.Handle, &u.HashedParts, &u.DeliveryError)
	if err != nil {
		return nil, err
	}
	u.Status = host.Status(status)
	u.DeliveryMode = host.DeliveryMode(mode)
	u.CreatedAt, u.UpdatedAt, u.ExpiresAt = unix(created), unix(updated), unix(expires)
	if completed != 0 {
		u.CompletedAt = unix(completed)
	}
	return &u, nil
}

func unix(s int64) time.Time { return time.Unix(s, 0).UTC() }

// CreateUpload inserts u and one pending row per part, in one transaction.
func (db *DB) CreateUpload(ctx context.Context, u *host.Upload) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create upload: %w", err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO uploads (`+uploadColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		u.ID, u.Filename, u.Path, u.TotalSize, u.ChunkSize, u.TotalParts, 0, string(host.StatusPending),
		u.StorageBackend, u.ChecksumSHA256, "", "", "", 0,
		u.WebhookURL, u.CreatedAt.Unix(), u.CreatedAt.Unix(), u.ExpiresAt.Unix(), 0,
		string(u.DeliveryMode), nil, 0, "")
	if err != nil {
		return fmt.Errorf("create upload: %w", err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO upload_parts (upload_id, part_number, size) VALUES (?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("create upload: %w", err)
	}
	defer stmt.Close()
	for n := 0; n < u.TotalParts; n++ {
		if _, err := stmt.ExecContext(ctx, u.ID, n, u.PartSize(n)); err != nil {
			return fmt.Errorf("create upload part %d: %w", n, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create upload: %w", err)
	}
	return nil
}

// Upload returns the upload id, or host.ErrNoRecord.
func (db *DB) Upload(ctx context.Context, id string) (*host.Upload, error) {
	u, err := scanUpload(db.r.QueryRowContext(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, host.ErrNoRecord
	}
	if err != nil {
		return nil, fmt.Errorf("read upload %s: %w", id, err)
	}
	return u, nil
}

// Parts returns the parts of upload id in order.
func (db *DB) Parts(ctx context.Context, id string) ([]host.Part, error) {
	return readParts(ctx, db.r, id)
}

// View is an upload with its parts, read at one point in time.
type View struct {
	Upload *host.Upload
	Parts  []host.Part // nil unless asked for
	// DeliveredParts counts the parts whose receipt is recorded (the backend holds them).
	DeliveredParts int
}

// View reads upload id, and its parts if withParts, in one read transaction: the upload's
// bytes_delivered and the parts' receipts, which are written together, agree.
func (db *DB) View(ctx context.Context, id string, withParts bool) (*View, error) {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read upload %s: %w", id, err)
	}
	defer tx.Rollback()
	u, err := scanUpload(tx.QueryRowContext(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, host.ErrNoRecord
	}
	if err != nil {
		return nil, fmt.Errorf("read upload %s: %w", id, err)
	}
	v := &View{Upload: u}
	if withParts {
		if v.Parts, err = readParts(ctx, tx, id); err != nil {
			return nil, err
		}
		for _, p := range v.Parts {
			if p.Delivered() {
				v.DeliveredParts++
			}
		}
	} else if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM upload_parts WHERE upload_id = ? AND receipt IS NOT NULL`,
		id).Scan(&v.DeliveredParts); err != nil {
		return nil, fmt.Errorf("count delivered parts of %s: %w", id, err)
	}
	return v, nil
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func readParts(ctx context.Context, q querier, id string) ([]host.Part, error) {
	rows, err := q.QueryContext(ctx, `SELECT part_number, size, status, checksum_sha256, uploaded_at,
		version, receipt, hash_after, note, crc32c
		FROM upload_parts WHERE upload_id = ? ORDER BY part_number`, id)
	if err != nil {
		return nil, fmt.Errorf("read parts of %s: %w", id, err)
	}
	defer rows.Close()
	var parts []host.Part
	for rows.Next() {
		var p host.Part
		var status string
		var at int64
		if err := rows.Scan(&p.Number, &p.Size, &status, &p.SHA256, &at, &p.Version, &p.Receipt, &p.HashAfter, &p.Note, &p.CRC32C); err != nil {
			return nil, fmt.Errorf("read parts of %s: %w", id, err)
		}
		p.Status = host.PartStatus(status)
		if at != 0 {
			p.UploadedAt = unix(at)
		}
		parts = append(parts, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read parts of %s: %w", id, err)
	}
	return parts, nil
}

// MissingParts returns up to limit numbers of parts of id that are not uploaded.
func (db *DB) MissingParts(ctx context.Context, id string, limit int) ([]int, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT part_number FROM upload_parts
		WHERE upload_id = ? AND status != 'uploaded' ORDER BY part_number LIMIT ?`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("read missing parts of %s: %w", id, err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// PartMark is the result of MarkPartUploaded.
type PartMark struct {
	Count   int   // the upload's uploaded parts
	Version int64 // the version of the part now staged
	// Hashed: the whole-file digest advanced past the part (see InBackend.HashAfter).
	Hashed bool
}

// MarkPartUploaded records part n of id as uploaded with checksum sum (hex SHA-256) and
// CRC-32C crc of its staged bytes, if the upload is
// still pending or failed, as a new version of the part (its receipt, hash state and note
// are cleared), and returns the upload's count of uploaded parts. It returns
// host.ErrNoRecord if the upload is gone and the upload (with its current status) if its
// status does not accept parts.
func (db *DB) MarkPartUploaded(ctx context.Context, id string, n int, sum string, crc uint32, at time.Time) (PartMark, *host.Upload, error) {
	return db.markPart(ctx, id, n, sum, crc, nil, at)
}

// InBackend is a part that the backend holds already: the host wrote it into the backend's
// part file itself (sdk.PartFiles) under Handle, and the backend recorded it with Receipt.
type InBackend struct {
	Handle, Receipt []byte
	// HashAfter, if set, is the whole-file digest's state after the part, computed as its
	// bytes arrived: the digest advances past the part, in the same transaction, if it is
	// the next part to hash.
	HashAfter []byte
}

// MarkPartStored is MarkPartUploaded for a part that the backend holds already: the new
// version is recorded with its receipt (and the digest's state after it, see
// InBackend.HashAfter), in one transaction. It fails with
// host.ErrHandleChanged, recording nothing, when the upload's handle is no longer
// in.Handle (the backend's object was started again meanwhile, without this part).
func (db *DB) MarkPartStored(ctx context.Context, id string, n int, sum string, crc uint32, in InBackend, at time.Time) (PartMark, *host.Upload, error) {
	return db.markPart(ctx, id, n, sum, crc, &in, at)
}

func (db *DB) markPart(ctx context.Context, id string, n int, sum string, crc uint32, in *InBackend, at time.Time) (PartMark, *host.Upload, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return PartMark{}, nil, fmt.Errorf("mark part: %w", err)
	}
	defer tx.Rollback()
	u, err := scanUpload(tx.QueryRowContext(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return PartMark{}, nil, host.ErrNoRecord
	}
	if err != nil {
		return PartMark{}, nil, fmt.Errorf("mark part: %w", err)
	}
	if u.Status != host.StatusPending && u.Status != host.StatusFailed {
		return PartMark{}, u, nil
	}
	var was, had string
	var version, size int64
	var delivered bool
	if err := tx.QueryRowContext(ctx, `SELECT status, checksum_sha256, version, size, receipt IS NOT NULL FROM upload_parts
		WHERE upload_id = ? AND part_number = ?`, id, n).Scan(&was, &had, &version, &size, &delivered); err != nil {
		return PartMark{}, nil, fmt.Errorf("mark part %d: %w", n, err)
	}
	if in != nil && !bytes.Equal(u.Handle, in.Handle) {
		return PartMark{}, nil, fmt.Errorf("mark part %d: %w", n, host.ErrHandleChanged)
	}
	if n < u.HashedParts && had != sum {
		// The whole-file digest covers the recorded bytes of this part (the caller checks
		// this under the part's lock; this keeps the rule whatever the caller).
		return PartMark{}, nil, host.Errorf(host.CodePartDelivered,
			"part %d is already in the file's digest with sha256 %s; other bytes cannot replace it", n, had)
	}
	version++
	var receipt []byte
	if in != nil {
		receipt = in.Receipt
	}
	if _, err := tx.ExecContext(ctx, `UPDATE upload_parts SET status = 'uploaded', checksum_sha256 = ?, crc32c = ?,
		uploaded_at = ?, version = ?, receipt = ?, note = '',
		hash_after = CASE WHEN part_number < ? THEN hash_after ELSE NULL END
		WHERE upload_id = ? AND part_number = ?`, sum, int64(crc), at.Unix(), version, receipt, u.HashedParts, id, n); err != nil {
		return PartMark{}, nil, fmt.Errorf("mark part %d: %w", n, err)
	}
	count := u.UploadedParts
	if was != string(host.PartUploaded) {
		count++
	}
	// bytes_delivered counts the parts with a receipt: the old version's leaves, the new
	// one's comes in with it.
	var change int64
	if delivered {
		change -= size
	}
	if in != nil {
		change += size
	}
	if _, err := tx.ExecContext(ctx, `UPDATE uploads SET uploaded_parts = ?, updated_at = ?, bytes_delivered = bytes_delivered + ?
		WHERE id = ?`, count, at.Unix(), change, id); err != nil {
		return PartMark{}, nil, fmt.Errorf("mark part %d: %w", n, err)
	}
	hashed := false
	if in != nil && in.HashAfter != nil && u.HashedParts == n {
		if hashed, err = recordHashed(ctx, tx, id, n, in.HashAfter); err != nil {
			return PartMark{}, nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return PartMark{}, nil, fmt.Errorf("mark part %d: %w", n, err)
	}
	return PartMark{Count: count, Version: version, Hashed: hashed}, nil, nil
}

// BeginFinalize moves a pending or failed upload whose parts are all uploaded to
// finalizing and reports whether it did.
func (db *DB) BeginFinalize(ctx context.Context, id string, at time.Time) (bool, error) {
	res, err := db.w.ExecContext(ctx, `UPDATE uploads SET status = 'finalizing', finalization_error = '',
		bytes_delivered = CASE WHEN delivery_mode = 'parts' THEN bytes_delivered ELSE 0 END, updated_at = ?
		WHERE id = ? AND status IN ('pending', 'failed') AND uploaded_parts = total_parts`, at.Unix(), id)
	if err != nil {
		return false, fmt.Errorf("begin finalize %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// SetBytesDelivered records delivery progress of a finalizing upload.
func (db *DB) SetBytesDelivered(ctx context.Context, id string, n int64) error {
	_, err := db.w.ExecContext(ctx, `UPDATE uploads SET bytes_delivered = ? WHERE id = ? AND status = 'finalizing'`, n, id)
	if err != nil {
		return fmt.Errorf("record progress of %s: %w", id, err)
	}
	return nil
}

// MarkComplete records a successful delivery and, in the same transaction, queues ev
// (when not nil).
func (db *DB) MarkComplete(ctx context.Context, id, finalPath, sum string, size int64, at time.Time, ev *host.WebhookEvent) error {
	return db.update(ctx, ev, `UPDATE uploads SET status = 'complete', final_path = ?, delivered_sha256 = ?,
		bytes_delivered = ?, finalization_error = '', completed_at = ?, updated_at = ? WHERE id = ?`,
		finalPath, sum, size, at.Unix(), at.Unix(), id)
}

// MarkFailed records a failed delivery (the upload can be completed again) and, in the
// same transaction, queues ev (when not nil).
func (db *DB) MarkFailed(ctx context.Context, id, reason string, at time.Time, ev *host.WebhookEvent) error {
	return db.update(ctx, ev, `UPDATE uploads SET status = 'failed', finalization_error = ?, updated_at = ?
		WHERE id = ? AND status = 'finalizing'`, reason, at.Unix(), id)
}

// update runs one statement and queues ev in a transaction.
func (db *DB) update(ctx context.Context, ev *host.WebhookEvent, query string, args ...any) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update upload: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("update upload: %w", err)
	}
	if ev != nil {
		if err := insertEvent(ctx, tx, ev); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update upload: %w", err)
	}
	return nil
}

// DeleteUpload removes upload id and its parts if its status is one of statuses, and
// reports whether it did. abort, when not nil, is queued in the same transaction, with the
// upload's handle as recorded then.
func (db *DB) DeleteUpload(ctx context.Context, id string, abort *host.BackendAbort, statuses ...host.Status) (bool, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("delete upload %s: %w", id, err)
	}
	defer tx.Rollback()
	var status string
	err = tx.QueryRowContext(ctx, `SELECT status FROM uploads WHERE id = ?`, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delete upload %s: %w", id, err)
	}
	ok := false
	for _, s := range statuses {
		ok = ok || host.Status(status) == s
	}
	if !ok {
		return false, nil
	}
	if abort != nil {
		if err := tx.QueryRowContext(ctx, `SELECT delivery_handle FROM uploads WHERE id = ?`, id).Scan(&abort.Handle); err != nil {
			return false, fmt.Errorf("delete upload %s: %w", id, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM upload_parts WHERE upload_id = ?`, id); err != nil {
		return false, fmt.Errorf("delete upload %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE id = ?`, id); err != nil {
		return false, fmt.Errorf("delete upload %s: %w", id, err)
	}
	if abort != nil {
		if err := insertAbort(ctx, tx, abort, time.Now()); err != nil {
			return false, err
		}
	}
	return true, tx.Commit()
}

// CountByStatus counts upload records by status.
func (db *DB) CountByStatus(ctx context.Context) (map[string]int, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT status, COUNT(*) FROM uploads GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count uploads: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}

// IDsWithStatus returns the ids of uploads in status.
func (db *DB) IDsWithStatus(ctx context.Context, status host.Status) ([]string, error) {
	return db.ids(ctx, `SELECT id FROM uploads WHERE status = ?`, string(status))
}

// ExpiredIDs returns the ids of pending and failed uploads that expired before now.
func (db *DB) ExpiredIDs(ctx context.Context, now time.Time) ([]string, error) {
	return db.ids(ctx, `SELECT id FROM uploads WHERE status IN ('pending', 'failed') AND expires_at <= ?`, now.Unix())
}

// MarkExpired moves a pending or failed upload to expired and reports whether it did.
// abort, when not nil, is queued in the same transaction, with the upload's handle as
// recorded then.
func (db *DB) MarkExpired(ctx context.Context, id string, at time.Time, abort *host.BackendAbort) (bool, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("mark %s expired: %w", id, err)
	}
	defer tx.Rollback()
	if abort != nil {
		if err := tx.QueryRowContext(ctx, `SELECT delivery_handle FROM uploads WHERE id = ?`, id).Scan(&abort.Handle); err != nil {
			return false, fmt.Errorf("mark %s expired: %w", id, err)
		}
	}
	res, err := tx.ExecContext(ctx, `UPDATE uploads SET status = 'expired', updated_at = ?, delivery_handle = NULL
		WHERE id = ? AND status IN ('pending', 'failed')`, at.Unix(), id)
	if err != nil {
		return false, fmt.Errorf("mark %s expired: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return false, err
	}
	if abort != nil {
		if err := insertAbort(ctx, tx, abort, at); err != nil {
			return false, err
		}
	}
	return true, tx.Commit()
}

// DeleteOld removes the records of uploads in status last updated before cutoff (their
// delivered files, if any, are not touched) and returns how many it removed.
func (db *DB) DeleteOld(ctx context.Context, status host.Status, cutoff time.Time) (int64, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("delete old %s uploads: %w", status, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM upload_parts WHERE upload_id IN
		(SELECT id FROM uploads WHERE status = ? AND updated_at < ?)`, string(status), cutoff.Unix()); err != nil {
		return 0, fmt.Errorf("delete old %s uploads: %w", status, err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE status = ? AND updated_at < ?`, string(status), cutoff.Unix())
	if err != nil {
		return 0, fmt.Errorf("delete old %s uploads: %w", status, err)
	}
	n, _ := res.RowsAffected()
	return n, tx.Commit()
}

// Exists reports whether upload id exists.
func (db *DB) Exists(ctx context.Context, id string) (bool, error) {
	var one int
	err := db.r.QueryRowContext(ctx, `SELECT 1 FROM uploads WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (db *DB) ids(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list uploads: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
