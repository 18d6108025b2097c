package client

import (
	"sync"
	"time"
)

// Phase is the stage an upload is in, as reported to a progress callback.
type Phase string

// Phases in the order an upload goes through them. PhaseHashing happens only with
// UploadOptions.ChecksumSHA256.
const (
	PhaseHashing    Phase = "hashing"    // reading the whole file for its SHA-256, before init
	PhaseUploading  Phase = "uploading"  // sending parts
	PhaseFinalizing Phase = "finalizing" // the server delivers the file to its storage backend
	PhaseComplete   Phase = "complete"   // delivered
)

// Progress is one progress report. All byte counts are of the file, not of HTTP traffic.
type Progress struct {
	// FileID is the upload's id; empty only in PhaseHashing.
	FileID string
	Phase  Phase
	// BytesHashed counts the bytes read for the whole-file checksum in PhaseHashing.
	BytesHashed int64
	// BytesUploaded counts the bytes handed to the network, including parts uploaded before a
	// Resume (ResumedBytes of them). A part that is sent again counts once: the count never
	// goes down. It equals TotalBytes once every part was acknowledged.
	BytesUploaded int64
	// ResumedBytes are the bytes of the parts the server already had when Resume started.
	ResumedBytes int64
	TotalBytes   int64
	// PartsDone counts the parts acknowledged by the server, including the resumed ones.
	PartsDone  int
	TotalParts int
	// DeliveryPercent is the server's finalizing_progress_percent: 0..100 in PhaseFinalizing,
	// 100 in PhaseComplete.
	DeliveryPercent int
}

// progressInterval is the shortest time between two reports of bytes in flight.
const progressInterval = 100 * time.Millisecond

// tracker counts the bytes and parts of an upload and calls the user's callback. Reports are
// serialised by a mutex, so the callback never runs concurrently with itself.
type tracker struct {
	mu       sync.Mutex
	fn       func(Progress)
	p        Progress
	partSent map[int]int64 // high-water mark of the bytes sent per part in flight
	done     map[int]bool  // acknowledged parts
	last     time.Time
}

func newTracker(fn func(Progress)) *tracker {
	return &tracker{fn: fn, partSent: map[int]int64{}, done: map[int]bool{}}
}

// report calls the callback with the current state, holding the mutex. Callers hold t.mu.
func (t *tracker) report() {
	t.last = time.Now()
	if t.fn != nil {
		t.fn(t.p)
	}
}

// update changes the state with f and reports it.
func (t *tracker) update(f func(p *Progress)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(&t.p)
	t.report()
}

// sent records that part n has sent attemptBytes bytes in its current attempt. A retry
// counts only the bytes beyond what an earlier attempt sent, and a failed attempt that is
// still being closed after the part succeeded counts nothing. Reports are throttled.
func (t *tracker) sent(n int, attemptBytes int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done[n] {
		return
	}
	if prev := t.partSent[n]; attemptBytes > prev {
		t.p.BytesUploaded += attemptBytes - prev
		t.partSent[n] = attemptBytes
		if time.Since(t.last) >= progressInterval {
			t.report()
		}
	}
}

// partDone records that part n, of size bytes, was acknowledged.
func (t *tracker) partDone(n int, size int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.p.BytesUploaded += size - t.partSent[n]
	delete(t.partSent, n)
	t.done[n] = true
	t.p.PartsDone++
	t.report()
}
