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

// Sweep expires pending and failed uploads past their expiry (their staged parts are
// removed, the record says expired), removes the records of complete and expired uploads
// older than the retention, and removes staging directories that belong to no upload in
// need of them. Uploads being delivered are never touched.
func (s *Service) Sweep(ctx context.Context) error {
	expired, err := s.db.ExpiredIDs(ctx, s.now())
	if err != nil {
		return err
	}
	for _, id := range expired {
		u, err := s.db.Upload(ctx, id)
		if err == host.ErrNoRecord {
			continue
		}
		if err != nil {
			return err
		}
		ul := s.uploadLock(id)
		ul.Lock()
		marked, err := s.db.MarkExpired(ctx, id, s.now(), abortFor(u))
		ul.Unlock()
		if err == nil && marked {
			s.stopPump(id)
			s.wakeAborts()
			s.release(id)
			err = s.stage.Remove(id)
			s.log.Info("upload expired; staged parts removed", "upload_id", id)
		}
		if err != nil {
			return err
		}
	}
	if s.opt.Retention > 0 {
		for _, st := range []host.Status{host.StatusComplete, host.StatusExpired} {
			n, err := s.db.DeleteOld(ctx, st, s.now().Add(-s.opt.Retention))
			if err != nil {
				return err
			}
			if n > 0 {
				s.log.Info("old upload records removed", "status", st, "count", n)
			}
		}
		if err := s.db.DeleteOldEvents(ctx, s.now().Add(-s.opt.Retention)); err != nil {
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
		case err == host.ErrNoRecord, err == nil && (u.Status == host.StatusComplete || u.Status == host.StatusExpired):
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
