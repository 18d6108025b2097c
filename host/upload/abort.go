package upload

import (
	"bytes"
	"context"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
)

// abortPoll is how often the queue of aborts is read when nothing woke it.
const abortPoll = 5 * time.Second

// abortLoop removes the part-wise objects of cancelled, expired and restarted uploads
// from the backend: an abort is queued in SQLite in the same transaction as the change
// that made it necessary, and retried with backoff until the backend confirms, so that no
// unfinished object is left behind, whatever crashes.
func (s *Service) abortLoop() {
	t := time.NewTicker(abortPoll)
	defer t.Stop()
	for {
		s.runAborts(s.ctx)
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.abortWake:
		}
	}
}

func (s *Service) wakeAborts() {
	select {
	case s.abortWake <- struct{}{}:
	default:
	}
}

// runAborts tries every queued abort that is due.
func (s *Service) runAborts(ctx context.Context) {
	due, err := s.db.DueAborts(ctx, s.now(), 100)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("reading queued aborts", "error", err)
		}
		return
	}
	for _, a := range due {
		if ctx.Err() != nil {
			return
		}
		if p := s.runningPump(a.UploadID); p != nil && p.mayUse(a.Handle) {
			continue // its parts may still be on their way: after the pump stopped
		}
		actx, cancel := context.WithTimeout(ctx, time.Minute)
		err := s.backend.AbortObject(actx, a.Key, a.Handle)
		if err == nil && a.Handle != nil && s.uploadGone(ctx, a.UploadID) {
			// Also whatever a crash left under the key before a handle was recorded.
			err = s.backend.AbortObject(actx, a.Key, nil)
		}
		cancel()
		if err == nil {
			if err := s.db.AbortDone(ctx, a.ID); err != nil {
				s.log.Warn("removing a done abort from the queue", "error", err)
			}
			s.log.Debug("unfinished object aborted in the backend", "upload_id", a.UploadID, "key", a.Key)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		backoff := min(10*time.Minute, time.Second<<min(a.Attempts, 10))
		s.log.Warn("aborting an unfinished object in the backend failed; retrying", "upload_id", a.UploadID,
			"key", a.Key, "attempts", a.Attempts+1, "retry_in", backoff.String(), "error", err)
		if err := s.db.AbortFailed(ctx, a.ID, s.now().Add(backoff), err.Error()); err != nil {
			s.log.Warn("rescheduling an abort", "error", err)
		}
	}
}

// uploadGone reports whether upload id was cancelled or expired: nothing under its key
// can be needed any more.
func (s *Service) uploadGone(ctx context.Context, id string) bool {
	u, err := s.db.Upload(ctx, id)
	if err == host.ErrNoRecord {
		return true
	}
	return err == nil && u.Status == host.StatusExpired
}

// mayUse reports whether the pump may still send parts under handle (nil: under any).
func (p *pump) mayUse(handle []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return handle == nil || bytes.Equal(handle, p.handle) || p.busy > 0
}

// abortFor returns the abort to queue when upload u goes away, nil when it has no
// part-wise object.
func abortFor(u *host.Upload) *host.BackendAbort {
	if u.DeliveryMode != host.DeliverParts {
		return nil
	}
	return &host.BackendAbort{UploadID: u.ID, Key: u.Key(), Handle: u.Handle}
}
