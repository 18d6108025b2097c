package upload

import (
	"context"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
)

// cleanupLoop sweeps at start and then every CleanupInterval until Close.
func (s *Service) cleanupLoop() {
	interval := s.opt.CleanupInterval
	if interval <= 0 {
		interval = time.Hour
	}
	for {
		if err := s.Sweep(s.ctx); err != nil && s.ctx.Err() == nil {
			s.log.Error("cleanup pass failed", "error", err)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Sweep removes expired uploads that are not complete or being delivered (records and
// staged parts) and staging directories that belong to no upload in need of them.
func (s *Service) Sweep(ctx context.Context) error {
	expired, err := s.db.ExpiredIDs(ctx, s.now())
	if err != nil {
		return err
	}
	for _, id := range expired {
		ul := s.uploadLock(id)
		ul.Lock()
		deleted, err := s.db.DeleteUpload(ctx, id, host.StatusPending, host.StatusFailed)
		if err == nil && deleted {
			err = s.stage.Remove(id)
			s.log.Info("expired upload removed", "upload_id", id)
		}
		ul.Unlock()
		if err != nil {
			return err
		}
	}
	dirs, err := s.stage.Uploads()
	if err != nil {
		return err
	}
	for _, id := range dirs {
		ul := s.uploadLock(id)
		ul.Lock()
		u, err := s.db.Upload(ctx, id)
		switch {
		case err == host.ErrNotFound, err == nil && u.Status == host.StatusComplete:
			err = s.stage.Remove(id)
			s.log.Info("orphaned staging removed", "upload_id", id)
		}
		ul.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}
