package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// limiter paces the reads of every part stream of one upload to rate bytes per second in
// all. It keeps a schedule: a read that comes late (a goroutine woken late on a busy
// machine) may catch up, by at most maxLag, so that oversleeping does not lower the rate.
type limiter struct {
	mu   sync.Mutex
	rate float64
	next time.Time
}

const maxLag = 50 * time.Millisecond

func (l *limiter) wait(n int) {
	if l == nil {
		return
	}
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now.Add(-maxLag)) {
		l.next = now.Add(-maxLag)
	}
	at := l.next
	l.next = at.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	l.mu.Unlock()
	if d := time.Until(at); d > 0 {
		time.Sleep(d)
	}
}

// pacedReader reads data in slices of at most pace bytes, each when the limiter allows.
type pacedReader struct {
	data []byte
	lim  *limiter
}

const pace = 256 << 10

func (r *pacedReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(r.data), pace)
	r.lim.wait(n)
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// sendOptions describe one upload of the benchmark.
type sendOptions struct {
	name     string
	size     int64
	parallel int
	rate     float64 // client bytes per second over all parts; 0: as fast as it goes
	complete bool    // complete after the last part; false: cancel the upload instead
	sha      string  // the file's SHA-256 for init (the host checks it before the commit)
	wantMode string  // the delivery_mode status must report after init
}

// sendResult is what one upload measured. Times count from the start of init.
type sendResult struct {
	FileID         string     `json:"file_id"`
	PartsSeconds   float64    `json:"parts_seconds"`                         // to the last part's 200
	AfterLastPart  float64    `json:"after_last_part_seconds,omitempty"`     // last part's 200 to complete's answer
	TotalSeconds   float64    `json:"total_seconds"`                         // to complete's answer (parts alone: the last part's 200)
	ClientMBps     float64    `json:"client_mb_per_s"`                       // size / PartsSeconds
	CompleteStatus int        `json:"complete_status,omitempty"`             // HTTP status of complete
	FinalPath      string     `json:"final_path,omitempty"`                  // from complete's answer
	DeliveryMode   string     `json:"delivery_mode"`                         // from status after init
	BacklogBytes   int64      `json:"undelivered_at_last_part_bytes"`        // size - bytes_delivered, sampled at most statusEvery before the last part's 200
	StagingPeak    int64      `json:"staging_peak_bytes"`                    // largest staging size sampled
	StagingAtLast  int64      `json:"staging_at_last_part_bytes"`            // staging size sampled just before the last part's 200
	AllDelivered   float64    `json:"all_delivered_after_last_part_seconds"` // first status sample with every byte delivered, after the last part's 200 (the rest of after_last_part: hashing what is left, and the commit)
	DeliveredMBps  float64    `json:"background_delivery_mb_per_s"`          // bytes_delivered at the last part / PartsSeconds
	Refused        int        `json:"parts_refused_429"`                     // part requests the host refused with 429 (too many undelivered parts), each sent again after 2 s
	Samples        int        `json:"staging_samples"`                       // how many staging samples PeakStaging is of
	Host           procStats  `json:"host"`
	Plugin         procStats  `json:"plugin"`
	LoadStart      [3]float64 `json:"load_average_start"`
	LoadEnd        [3]float64 `json:"load_average_end"`
}

// window hands out the part numbers in order, none more than size ahead of the lowest part
// not yet acknowledged.
//
// The host removes a staged part only once it is delivered and every part before it is in
// the file's digest, and refuses new parts with 429 while an upload holds its cap of
// staged parts (MAX_PARTS_IN_FLIGHT_PER_UPLOAD + PART_DELIVERIES_PER_UPLOAD, 20 by default).
// A client that sends later parts while an earlier one waits after a 429 can fill the cap
// with parts that cannot leave staging until that earlier part arrives, which the host then
// refuses for good (seen with 4 parts in flight on S3). Staying within aheadLimit parts of
// the lowest one missing keeps the cap from filling up with such parts.
type window struct {
	mu        sync.Mutex
	cond      *sync.Cond
	next, low int
	size      int
	done      []bool
}

func newWindow(total, size int) *window {
	w := &window{size: size, done: make([]bool, total)}
	w.cond = sync.NewCond(&w.mu)
	return w
}

// take returns the next part to send, waiting while it is too far ahead; false when none is left.
func (w *window) take() (int, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.blocked() {
		w.cond.Wait()
	}
	if w.next >= len(w.done) {
		return 0, false
	}
	w.next++
	return w.next - 1, true
}

// blocked reports whether the next part must wait for an earlier one; w.mu must be held.
func (w *window) blocked() bool { return w.next < len(w.done) && w.next >= w.low+w.size }

// ack records that part n was answered (acknowledged, or failed for good).
func (w *window) ack(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done[n] = true
	for w.low < len(w.done) && w.done[w.low] {
		w.low++
	}
	w.cond.Broadcast()
}

const (
	aheadLimit   = 16              // the host's default MAX_PARTS_IN_FLIGHT_PER_UPLOAD
	stallTimeout = 3 * time.Minute // no part acknowledged for this long while refused with 429: give up
	retryAfter   = 2 * time.Second // the host's Retry-After for 429
	stagingEvery = 50 * time.Millisecond
	statusEvery  = 100 * time.Millisecond
)

// send uploads o.size bytes (data, the content of a full part, repeated; the last part cut
// short) to h with o.parallel parts in flight, then completes (or cancels) the upload,
// sampling the staging directory and the upload's delivery progress meanwhile.
func send(ctx context.Context, h *host, data []byte, o sendOptions) (*sendResult, error) {
	r := &sendResult{LoadStart: loadAvg()}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	type sample struct {
		at time.Time
		n  int64
	}
	var mu sync.Mutex
	var staged, delivered []sample
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(stagingEvery)
		defer t.Stop()
		for {
			n := dirBytes(h.staging)
			mu.Lock()
			staged = append(staged, sample{time.Now(), n})
			mu.Unlock()
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
			}
		}
	})
	defer func() { stopSampling(); wg.Wait() }()

	start := time.Now()
	up, err := h.init(ctx, o.name, o.size, o.sha)
	if err != nil {
		return nil, err
	}
	st, err := h.status(ctx, up.FileID)
	if err != nil {
		return nil, err
	}
	r.DeliveryMode, r.FileID = st.DeliveryMode, up.FileID
	if o.wantMode != "" && st.DeliveryMode != o.wantMode {
		return nil, fmt.Errorf("upload %s: delivery_mode %q after init, want %q", up.FileID, st.DeliveryMode, o.wantMode)
	}
	wg.Go(func() {
		t := time.NewTicker(statusEvery)
		defer t.Stop()
		for {
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
			}
			at := time.Now()
			if s, err := h.status(sampleCtx, up.FileID); err == nil {
				mu.Lock()
				delivered = append(delivered, sample{at, s.BytesDelivered})
				mu.Unlock()
			}
		}
	})

	var lim *limiter
	if o.rate > 0 {
		lim = &limiter{rate: o.rate}
	}
	var retries atomic.Int64
	ends := make([]time.Time, up.TotalParts)
	errs := make([]error, up.TotalParts)
	win := newWindow(up.TotalParts, aheadLimit)
	var lastOK atomic.Int64
	lastOK.Store(time.Now().UnixNano())
	var parts sync.WaitGroup
	for range o.parallel {
		parts.Go(func() {
			for {
				n, ok := win.take()
				if !ok {
					return
				}
				size := min(up.ChunkSize, o.size-int64(n)*up.ChunkSize)
				hdr := map[string]string{"Authorization": "Bearer " + up.Parts[n].Token, "Content-Type": "application/octet-stream"}
				for {
					code, err := h.call(ctx, http.MethodPut, "/upload/"+up.FileID+"/part/"+strconv.Itoa(n), hdr,
						&pacedReader{data: data[:size], lim: lim}, size, nil, http.StatusOK, http.StatusTooManyRequests)
					if err != nil || code == http.StatusOK {
						errs[n] = err
						lastOK.Store(time.Now().UnixNano())
						break
					}
					if idle := time.Since(time.Unix(0, lastOK.Load())); idle > stallTimeout {
						errs[n] = fmt.Errorf("part %d: no part acknowledged for %v, every one refused with 429: the upload holds as many undelivered parts as the host allows and does not deliver them", n, idle.Round(time.Second))
						break
					}
					// The host holds as many undelivered parts of the upload as it allows:
					// wait as its Retry-After says (2 s), as the CLI does, and send again.
					retries.Add(1)
					time.Sleep(retryAfter)
				}
				ends[n] = time.Now()
				win.ack(n)
			}
		})
	}
	parts.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	last := start
	for _, e := range ends {
		if e.After(last) {
			last = e
		}
	}
	r.PartsSeconds = last.Sub(start).Seconds()
	r.Refused = int(retries.Load())
	r.ClientMBps = float64(o.size) / 1e6 / r.PartsSeconds

	end := last
	if o.complete {
		var ans harness.CompleteResponse
		code, err := h.call(ctx, http.MethodPost, "/upload/"+up.FileID+"/complete", keyHeader, nil, 0, &ans, http.StatusOK, http.StatusAccepted)
		end = time.Now()
		if err != nil {
			return nil, err
		}
		r.CompleteStatus = code
		if ans.FinalPath != nil {
			r.FinalPath = *ans.FinalPath
		}
		r.AfterLastPart = end.Sub(last).Seconds()
	}
	r.TotalSeconds = end.Sub(start).Seconds()
	stopSampling()
	wg.Wait()
	if !o.complete {
		if err := h.cancel(ctx, up.FileID); err != nil {
			return nil, err
		}
	}
	for _, s := range staged {
		r.StagingPeak = max(r.StagingPeak, s.n)
		if !s.at.After(last) {
			r.StagingAtLast = s.n
		}
	}
	r.Samples = len(staged)
	r.BacklogBytes = o.size
	for _, s := range delivered {
		if s.n == o.size && r.AllDelivered == 0 {
			r.AllDelivered = max(s.at.Sub(last).Seconds(), 0)
		}
		if !s.at.After(last) {
			r.BacklogBytes = o.size - s.n
			r.DeliveredMBps = float64(s.n) / 1e6 / last.Sub(start).Seconds()
		}
	}
	r.Host, r.Plugin = h.stats()
	r.LoadEnd = loadAvg()
	return r, nil
}
