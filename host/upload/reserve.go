package upload

import (
	"context"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
)

// reservations is the staging space promised to uploads that are not delivered yet, so
// that init refuses (507) what the staging disk could not hold, instead of letting parts
// fail later. A whole-delivered upload reserves its size; a part-wise one what it may hold
// in staging at once (reservation).
type reservations struct {
	mu    sync.Mutex
	by    map[string]int64
	total int64
}

// reservation is the staging space upload u may need at once.
func (s *Service) reservation(u *host.Upload) int64 {
	if u.DeliveryMode != host.DeliverParts {
		return u.TotalSize
	}
	return min(u.TotalSize, int64(s.stagedPartsCap())*u.ChunkSize)
}

// stagedPartsCap is how many parts a part-wise upload may hold in staging at once: those
// being received plus those waiting for the backend or for an earlier part.
func (s *Service) stagedPartsCap() int {
	return s.opt.MaxPartWritesPerUpload + s.opt.PartDeliveriesPerUpload
}

// reserve records u's reservation if the staging disk can hold it beside the others and
// the configured reserve.
func (s *Service) reserve(u *host.Upload) error {
	need := s.reservation(u)
	r := &s.reserved
	r.mu.Lock()
	defer r.mu.Unlock()
	free, err := s.free()
	if err != nil {
		return err
	}
	staged, err := s.stage.Bytes()
	if err != nil {
		return err
	}
	// Staged bytes are part of the reservations, and already off the free space.
	outstanding := max(0, r.total-staged)
	if avail := free - outstanding; avail < need+s.opt.StagingReserve {
		return host.Errorf(host.CodeInsufficientStorage,
			"the server has %d MiB of staging space left for new uploads, this one needs %d MiB; try later or a smaller file",
			max(0, avail-s.opt.StagingReserve)>>20, (need+(1<<20)-1)>>20)
	}
	if r.by == nil {
		r.by = map[string]int64{}
	}
	r.by[u.ID] = need
	r.total += need
	return nil
}

// release drops upload id's reservation (it was delivered, cancelled or expired).
func (s *Service) release(id string) {
	r := &s.reserved
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.by[id]; ok {
		r.total -= n
		delete(r.by, id)
	}
}

// restoreReservations rebuilds the reservations of the uploads not yet delivered (at start).
func (s *Service) restoreReservations(ctx context.Context) error {
	r := &s.reserved
	for _, st := range []host.Status{host.StatusPending, host.StatusFailed, host.StatusFinalizing} {
		ids, err := s.db.IDsWithStatus(ctx, st)
		if err != nil {
			return err
		}
		for _, id := range ids {
			u, err := s.db.Upload(ctx, id)
			if err != nil {
				return err
			}
			r.mu.Lock()
			if r.by == nil {
				r.by = map[string]int64{}
			}
			if _, ok := r.by[id]; !ok {
				n := s.reservation(u)
				r.by[id] = n
				r.total += n
			}
			r.mu.Unlock()
		}
	}
	return nil
}

// stagedWait bounds how long a part write waits for room in its upload's staging.
const stagedWait = time.Minute

// checkStagedParts holds a write of part n of part-wise upload u while the upload has as
// many parts in staging as it reserved (the backend is behind, or parts arrive far out of
// order): the client sees a slower answer, as TCP backpressure would give it, and the
// write goes on once earlier parts were delivered. After stagedWait it is refused with
// too_many_requests, to retry later. Nothing of the body has been read meanwhile.
func (s *Service) checkStagedParts(ctx context.Context, u *host.Upload, n int) error {
	if u.DeliveryMode != host.DeliverParts || s.stage.HasPart(u.ID, n) {
		return nil
	}
	limit := s.stagedPartsCap()
	deadline := time.Now().Add(stagedWait)
	for {
		// The next part of the whole-file digest is always taken: parts held in staging out
		// of order wait for it, so refusing it could never end.
		next := u.HashedParts
		if p := s.runningPump(u.ID); p != nil {
			next = p.nextToHash()
		}
		if n == next {
			return nil
		}
		staged := s.stagedCount(u.ID)
		if staged < limit {
			return nil
		}
		if time.Now().After(deadline) {
			return host.Errorf(host.CodeTooManyRequests,
				"upload %s holds %d parts not yet in storage (at most %d); retry in a moment", u.ID, staged, limit)
		}
		var changed <-chan struct{}
		if p := s.runningPump(u.ID); p != nil {
			changed = p.changedChan()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stagedCount counts the parts (and writes in flight) in upload id's staging.
func (s *Service) stagedCount(id string) int {
	entries, err := os.ReadDir(s.stage.UploadDir(id))
	if err != nil {
		return 0 // nothing staged yet
	}
	staged := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".part") || strings.HasSuffix(e.Name(), ".tmp") {
			staged++
		}
	}
	return staged
}
