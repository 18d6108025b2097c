package upload

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/sqlite"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// commitFailures is how many background tasks in a row may fail while complete waits
// before complete gives up (the upload is then failed and can be completed again; the
// background delivery goes on retrying).
const commitFailures = 3

// commitParts completes a part-wise upload: it waits for the parts still on their way to
// the backend, checks the whole-file digest against the one declared at init and commits
// the object, which the backend makes visible without reading it back.
func (s *Service) commitParts(j *job, u *host.Upload) error {
	log := s.log.With("upload_id", u.ID)
	start := time.Now()
	p := s.pumpFor(u.ID, u.Key())
	p.retryNow()
	// What is left: the bytes not yet delivered, or not yet in the whole-file digest if
	// more (parts written in place are delivered when answered, and read back later).
	hashed := min(int64(u.HashedParts)*u.ChunkSize, u.TotalSize)
	remaining := max(u.TotalSize-u.BytesDelivered, u.TotalSize-hashed)
	ctx, cancel := context.WithTimeout(s.ctx, deliveryTimeout(max(remaining, 0)))
	defer cancel()
	j.delivered.Store(u.BytesDelivered)
	handle, receipts, sum, err := p.waitDelivered(ctx, commitFailures)
	switch {
	case errors.Is(err, errDeliverWhole):
		fresh, ferr := s.db.Upload(context.WithoutCancel(ctx), u.ID)
		if ferr != nil {
			return s.deliveryFailed(u, ferr, 0)
		}
		return s.deliver(j, fresh)
	case errors.Is(err, errPartPending):
		missing, merr := s.db.MissingParts(context.WithoutCancel(ctx), u.ID, 20)
		if merr != nil {
			return s.deliveryFailed(u, fmt.Errorf("listing the parts to send again: %w", merr), 0)
		}
		total := len(missing)
		if fresh, ferr := s.db.Upload(context.WithoutCancel(ctx), u.ID); ferr == nil {
			total = max(total, fresh.TotalParts-fresh.UploadedParts)
		}
		which := "parts " + listParts(missing, total)
		if total == 1 {
			which = "part " + listParts(missing, 1)
		}
		return s.deliveryFailed(u, host.Errorf(host.CodePartsMissing,
			"%s must be sent again (see the message in status), then complete again", which), 0)
	case err != nil:
		return s.deliveryFailed(u, err, 0)
	}
	j.delivered.Store(u.TotalSize)
	if u.ChecksumSHA256 != "" && hex.EncodeToString(sum) != u.ChecksumSHA256 {
		reason := fmt.Sprintf("the file's SHA-256 is %x, not checksum_sha256 %s given at init; nothing was stored, "+
			"every part must be sent again", sum, u.ChecksumSHA256)
		if err := s.restartParts(p, u, handle); err != nil {
			log.Error("resetting an upload whose checksum did not match", "error", err)
		}
		return s.deliveryFailed(u, host.Errorf(host.CodeChecksumMismatch, "%s", reason), 0)
	}
	obj, err := s.backend.CommitObject(ctx, handle, receipts, sum)
	if errors.Is(err, sdk.ErrNotFound) || errors.Is(err, sdk.ErrStaleReceipt) {
		reason := "the storage backend lost parts of the unfinished file; the parts it lost are pending again: send them, then complete again"
		s.resetLost(p, handle)
		return s.deliveryFailed(u, host.Wrap(err, host.CodeDeliveryFailed, reason), 0)
	}
	if err != nil {
		return s.deliveryFailed(u, err, 0)
	}
	if obj.SHA256 == nil {
		obj.SHA256 = sum
	}
	if err := s.delivered(u, obj, start); err != nil {
		return err
	}
	s.stopPump(u.ID)
	log.Info("part-wise upload committed", "commit_seconds", time.Since(start).Seconds(), "parts", len(receipts))
	return nil
}

// resetLost drops the part-wise object of handle after the backend lost it.
func (s *Service) resetLost(p *pump, handle []byte) {
	ul := s.uploadLock(p.id)
	ul.Lock()
	err := p.resetLocked("", handle)
	ul.Unlock()
	if err != nil {
		s.log.Error("resetting the upload's part-wise object", "upload_id", p.id, "error", err)
	}
	p.reload()
}

// restartParts refuses the file as sent: its object is aborted and every part is pending
// again.
func (s *Service) restartParts(p *pump, u *host.Upload, handle []byte) error {
	ul := s.uploadLock(u.ID)
	ul.Lock()
	err := s.db.ResetDelivery(context.Background(), u.ID, sqlite.Reset{
		Restart: true, Note: "the file's checksum did not match: send this part again", At: s.now(),
		Abort: &host.BackendAbort{UploadID: u.ID, Key: u.Key(), Handle: handle},
	})
	ul.Unlock()
	if err == nil {
		err = s.stage.Remove(u.ID)
	}
	p.reload()
	s.wakeAborts()
	return err
}

// reload makes the pump read its state from the database again.
func (p *pump) reload() {
	p.mu.Lock()
	p.loaded = false
	p.mu.Unlock()
	p.poke()
}

// retryNow lets the pump retry at once instead of waiting out its backoff.
func (p *pump) retryNow() {
	p.mu.Lock()
	p.retryAt = time.Time{}
	p.mu.Unlock()
	p.poke()
}
