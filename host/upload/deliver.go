package upload

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/staging"
	"github.com/chunked-uploader/chunked-uploader/host/webhook"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// job is one delivery in progress.
type job struct {
	done      chan struct{} // closed when the delivery ended
	delivered atomic.Int64  // bytes handed to the backend so far
	err       error         // set before done is closed; nil on success

	mu sync.Mutex
	// waiting counts the Complete calls waiting for the delivery: a server-side failure is
	// theirs to report (they return it, and the API logs it), so the job logs it only when
	// nobody waits.
	waiting int
}

// wait adds d to the Complete calls waiting for j.
func (j *job) wait(d int) {
	j.mu.Lock()
	j.waiting += d
	j.mu.Unlock()
}

// finished reports whether the delivery ended (j.err is then set).
func (j *job) finished() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// progressInterval is how often delivery progress is written to the database.
const progressInterval = time.Second

// Complete starts the delivery of an upload whose parts are all uploaded (or finds the one
// running) and waits for it up to the configured bound. It returns the upload as it then
// is: complete, or still finalizing. A delivery that failed within the wait returns its
// error; the upload is then failed and Complete may be called again.
func (s *Service) Complete(ctx context.Context, id string) (*host.Upload, error) {
	u, err := s.upload(ctx, id)
	if err != nil {
		return nil, err
	}
	var j *job
	switch u.Status {
	case host.StatusComplete:
		return u, nil
	case host.StatusExpired:
		return nil, host.Errorf(host.CodeUploadExpired, "upload %s expired at %s; its parts were removed", u.ID, u.ExpiresAt.Format(time.RFC3339))
	case host.StatusPending, host.StatusFailed:
		if u.Expired(s.now()) {
			return nil, host.Errorf(host.CodeUploadExpired, "upload %s expired at %s", u.ID, u.ExpiresAt.Format(time.RFC3339))
		}
		if u.UploadedParts < u.TotalParts {
			missing, err := s.db.MissingParts(ctx, id, 20)
			if err != nil {
				return nil, err
			}
			return nil, host.Errorf(host.CodePartsMissing, "not all parts uploaded: %d of %d; missing parts %s",
				u.UploadedParts, u.TotalParts, listParts(missing, u.TotalParts-u.UploadedParts))
		}
		ul := s.uploadLock(id)
		ul.Lock()
		started, err := s.db.BeginFinalize(ctx, id, s.now())
		if err == nil && started {
			u.Status = host.StatusFinalizing
			j = s.startJob(u)
		}
		ul.Unlock()
		if err != nil {
			return nil, err
		}
	}
	if j == nil {
		j = s.job(id)
	}
	if j != nil && s.opt.CompleteWait > 0 {
		j.wait(1)
		timer := time.NewTimer(s.opt.CompleteWait)
		select {
		case <-j.done:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		// A delivery that ended is reported, even when the wait ended at the same moment:
		// the job logged nothing, as this call was waiting.
		finished := j.finished()
		j.wait(-1)
		switch {
		case finished && j.err != nil:
			return nil, deliveryError(j.err)
		case !finished && ctx.Err() != nil:
			return nil, ctx.Err()
		}
	}
	if u, err = s.upload(ctx, id); err != nil {
		return nil, err
	}
	if u.Status == host.StatusFailed {
		return nil, host.Errorf(host.CodeDeliveryFailed, "%s", u.FinalizationError)
	}
	return u, nil
}

func listParts(parts []int, total int) string {
	s := ""
	for i, n := range parts {
		if i > 0 {
			s += ", "
		}
		s += strconv.Itoa(n)
	}
	if total > len(parts) {
		s += fmt.Sprintf(" and %d more", total-len(parts))
	}
	return s
}

func (s *Service) job(id string) *job {
	s.jobsMu.Lock()
	defer s.jobsMu.Unlock()
	return s.jobs[id]
}

// startJob starts delivering u in the background unless a delivery of it is running, and
// returns the delivery.
func (s *Service) startJob(u *host.Upload) *job {
	s.jobsMu.Lock()
	defer s.jobsMu.Unlock()
	if j, ok := s.jobs[u.ID]; ok {
		return j
	}
	j := &job{done: make(chan struct{})}
	s.jobs[u.ID] = j
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.deliver(j, u)
		j.mu.Lock()
		j.err = err
		waiting := j.waiting > 0
		j.mu.Unlock()
		switch {
		case err == nil || s.ctx.Err() != nil:
		case !serverFault(err):
			// The file as sent was refused (its checksum, parts to send again): the client's
			// to fix, not an error of the server.
			s.log.Info("delivery refused", "upload_id", u.ID, "reason", err)
		case !waiting:
			// Nobody waits for the result (complete returned before the delivery ended, or
			// Start resumed it): the log is its only report.
			s.log.Error("delivery failed", "upload_id", u.ID, "error", err)
		}
		s.jobsMu.Lock()
		delete(s.jobs, u.ID)
		s.jobsMu.Unlock()
		close(j.done)
	}()
	return j
}

// deliver streams the staged parts, in order, into the backend. The backend makes the
// object visible only if every byte arrived and the SHA-256 matches (and, when the client
// declared one at init, only if it equals that). Staged parts are removed only after the
// backend confirmed and the upload is recorded complete.
func (s *Service) deliver(j *job, u *host.Upload) error {
	log := s.log.With("upload_id", u.ID)
	if u.DeliveryMode == host.DeliverParts {
		return s.commitParts(j, u)
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
	start := time.Now()
	log.Info("delivery started", "key", u.Key(), "bytes", u.TotalSize, "backend", s.backend.Name())

	recorded, err := s.db.Parts(s.ctx, u.ID)
	if err != nil {
		return s.deliveryFailed(u, fmt.Errorf("reading the parts: %w", err), 0)
	}
	sizes := make([]int64, u.TotalParts)
	sums := make([][]byte, u.TotalParts)
	for n := range sizes {
		sizes[n] = u.PartSize(n)
		if n < len(recorded) {
			if sums[n], err = hex.DecodeString(recorded[n].SHA256); err != nil {
				return s.deliveryFailed(u, fmt.Errorf("part %d: recorded sha256 %q: %w", n, recorded[n].SHA256, err), 0)
			}
		}
	}
	// Every part is checked against the checksum it was acknowledged with as it is read:
	// a part that rotted on disk never reaches the backend.
	parts := s.stage.VerifiedReader(u.ID, sizes, sums)
	defer parts.Close()
	var want []byte
	if u.ChecksumSHA256 != "" {
		if want, err = hex.DecodeString(u.ChecksumSHA256); err != nil {
			return s.deliveryFailed(u, fmt.Errorf("recorded checksum_sha256 %q: %w", u.ChecksumSHA256, err), 0)
		}
	}

	ctx, cancel := context.WithTimeout(s.ctx, deliveryTimeout(u.TotalSize))
	defer cancel()
	stopProgress := s.recordProgress(ctx, u.ID, j)
	obj, err := s.backend.PutChecked(ctx, u.Key(), &countingReader{r: parts, n: &j.delivered}, u.TotalSize, want)
	stopProgress()
	var damaged *staging.DamagedError
	if errors.As(err, &damaged) {
		note := fmt.Sprintf("part %d must be sent again: its staged copy was damaged on the server's disk", damaged.Part)
		log.Error("a staged part is damaged on the server's disk; it is pending again", "part", damaged.Part, "error", err)
		pl := s.partLock(u.ID, damaged.Part)
		pl.Lock()
		if _, merr := s.db.MarkPartPending(context.Background(), u.ID, damaged.Part, recorded[damaged.Part].Version, note, s.now()); merr != nil {
			log.Error("putting a damaged part back to pending", "part", damaged.Part, "error", merr)
		} else if rerr := s.stage.RemovePart(u.ID, damaged.Part); rerr != nil {
			log.Warn("removing a damaged staged part", "part", damaged.Part, "error", rerr)
		}
		pl.Unlock()
		err = host.Wrap(err, host.CodePartsMissing, note+", then complete again; nothing was stored")
	}
	if err != nil {
		return s.deliveryFailed(u, err, j.delivered.Load())
	}
	return s.delivered(u, obj, start)
}

// deliveryFailed records a failed delivery of u (the upload is failed and can be
// completed again) and returns err with the bytes delivered, unless the server is shutting
// down: the upload then stays finalizing and Start resumes it. It does not log err: the
// caller of Complete that gets it, or else the job (startJob), does.
func (s *Service) deliveryFailed(u *host.Upload, err error, delivered int64) error {
	log := s.log.With("upload_id", u.ID)
	if s.ctx.Err() != nil {
		log.Info("delivery interrupted by shutdown; it resumes at the next start")
		return fmt.Errorf("%w: server shutting down", sdk.ErrUnavailable)
	}
	s.opt.Metrics.Delivered(false, 0, 0)
	reason := deliveryError(err).Message
	now := s.now()
	if merr := s.db.MarkFailed(context.Background(), u.ID, reason, now, webhook.NewEvent(host.EventUploadFailed, u, now, reason)); merr != nil {
		log.Error("recording failed delivery", "error", merr)
	}
	s.notify(u)
	return fmt.Errorf("delivery of %s failed after %d of %d bytes: %w", u.Key(), delivered, u.TotalSize, err)
}

// delivered records the delivery of u as obj, started at start.
func (s *Service) delivered(u *host.Upload, obj sdk.Object, start time.Time) error {
	log := s.log.With("upload_id", u.ID)
	sum := hex.EncodeToString(obj.SHA256)
	now := s.now()
	done := *u
	done.Status, done.FinalPath, done.DeliveredSHA256, done.CompletedAt = host.StatusComplete, obj.Location, sum, now
	if err := s.db.MarkComplete(context.Background(), u.ID, obj.Location, sum, u.TotalSize, now,
		webhook.NewEvent(host.EventUploadComplete, &done, now, "")); err != nil {
		if merr := s.db.MarkFailed(context.Background(), u.ID, "the file was delivered but could not be recorded; complete again", s.now(), nil); merr != nil {
			log.Error("recording a failed delivery", "error", merr)
		}
		return fmt.Errorf("recording completed delivery: %w", err)
	}
	s.notify(u)
	s.release(u.ID)
	if err := s.stage.Remove(u.ID); err != nil {
		log.Warn("removing staged parts after delivery (the sweeper retries)", "error", err)
	}
	elapsed := time.Since(start)
	s.opt.Metrics.Delivered(true, u.TotalSize, elapsed)
	log.Info("delivery complete", "final_path", obj.Location, "sha256", sum, "bytes", u.TotalSize,
		"seconds", elapsed.Seconds(), "mb_per_s", float64(u.TotalSize)/1e6/max(elapsed.Seconds(), 1e-9))
	return nil
}

// notify wakes the webhook sender if u has a webhook.
func (s *Service) notify(u *host.Upload) {
	if u.WebhookURL != "" && s.opt.Notifier != nil {
		s.opt.Notifier.Wake()
	}
}

// deliveryTimeout bounds a delivery: 5 minutes plus 1 second per MiB (1 MiB/s worst case).
func deliveryTimeout(size int64) time.Duration {
	return 5*time.Minute + time.Duration(size>>20)*time.Second
}

// recordProgress writes j's progress to the database every progressInterval until the
// returned func is called.
func (s *Service) recordProgress(ctx context.Context, id string, j *job) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		last := int64(-1)
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if n := j.delivered.Load(); n != last {
					if err := s.db.SetBytesDelivered(ctx, id, n); err != nil {
						s.log.Warn("recording delivery progress", "upload_id", id, "error", err)
					}
					last = n
				}
			}
		}
	}()
	return func() { close(stop); <-done }
}

// serverFault reports whether the delivery failure err is the server's or its backend's
// (logged as an error) rather than a refusal of the file as sent.
func serverFault(err error) bool {
	switch deliveryError(err).Code {
	case host.CodeChecksumMismatch, host.CodePartsMissing:
		return false
	}
	return true
}

// deliveryError turns a delivery failure into what the client is told. The cause is
// logged, never sent: it may name backend paths.
func deliveryError(err error) *host.Error {
	var he *host.Error
	if errors.As(err, &he) {
		return he
	}
	switch {
	case errors.Is(err, sdk.ErrDigestMismatch):
		return host.Wrap(err, host.CodeChecksumMismatch, "delivery refused: the file's SHA-256 does not match checksum_sha256 given at init, or the data changed on the way; nothing was stored")
	case errors.Is(err, sdk.ErrPluginExited):
		return host.Wrap(err, host.CodeBackendUnavailable, "the storage plugin stopped during delivery; it is restarted, call complete again")
	case errors.Is(err, sdk.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return host.Wrap(err, host.CodeBackendUnavailable, "the storage backend is unavailable; the parts are kept, call complete again later")
	case errors.Is(err, sdk.ErrInsufficientStorage):
		return host.Wrap(err, host.CodeInsufficientStorage, "the storage backend has no space left for the file; the parts are kept")
	case errors.Is(err, sdk.ErrPermission):
		return host.Wrap(err, host.CodeDeliveryFailed, "the storage backend refused the write (permission denied); the parts are kept")
	case errors.Is(err, sdk.ErrSizeMismatch):
		return host.Wrap(err, host.CodeDeliveryFailed, "the storage backend did not receive the whole file; the parts are kept, call complete again")
	}
	return host.Wrap(err, host.CodeDeliveryFailed, "the storage backend failed to store the file; the parts are kept, call complete again")
}

// countingReader counts bytes read into n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	m, err := c.r.Read(p)
	c.n.Add(int64(m))
	return m, err
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
