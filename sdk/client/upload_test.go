package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func randomBytes(n int64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// progressLog records progress reports and checks that they never run concurrently.
type progressLog struct {
	mu      sync.Mutex
	running atomic.Bool
	reports []Progress
	overlap bool
}

func (l *progressLog) record(p Progress) {
	if !l.running.CompareAndSwap(false, true) {
		l.overlap = true
	}
	defer l.running.Store(false)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reports = append(l.reports, p)
}

// check asserts that bytes and parts never go down, phases go forward, and the last report
// is complete with every byte and part.
func (l *progressLog) check(t *testing.T, size int64, parts int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.overlap {
		t.Error("progress callback ran concurrently with itself")
	}
	order := map[Phase]int{PhaseHashing: 0, PhaseUploading: 1, PhaseFinalizing: 2, PhaseComplete: 3}
	var prev Progress
	for i, p := range l.reports {
		if i > 0 && (p.BytesUploaded < prev.BytesUploaded || p.PartsDone < prev.PartsDone || order[p.Phase] < order[prev.Phase]) {
			t.Fatalf("report %d went back: %+v after %+v", i, p, prev)
		}
		if p.BytesUploaded > size || p.TotalBytes != size {
			t.Fatalf("report %d: %+v, total %d", i, p, size)
		}
		prev = p
	}
	want := Progress{FileID: prev.FileID, Phase: PhaseComplete, BytesUploaded: size, ResumedBytes: prev.ResumedBytes,
		TotalBytes: size, PartsDone: parts, TotalParts: parts, DeliveryPercent: 100}
	if prev != want || prev.FileID == "" {
		t.Errorf("last report %+v, want %+v", prev, want)
	}
}

func TestUploadSizes(t *testing.T) {
	t.Parallel()
	const chunk = 1000
	tests := map[string]struct {
		size  int64
		parts int
	}{
		"empty":              {0, 0},
		"one byte":           {1, 1},
		"exactly one chunk":  {chunk, 1},
		"chunk plus one":     {chunk + 1, 2},
		"five chunks plus 1": {5*chunk + 1, 6},
		"many parts":         {57*chunk + 13, 58},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFakeServer(t, chunk)
			data := randomBytes(tc.size)
			var log progressLog
			res, err := f.client(t, WithConcurrency(3)).Upload(t.Context(), "dir/a.bin", bytes.NewReader(data), tc.size,
				UploadOptions{Progress: log.record})
			if err != nil {
				t.Fatal(err)
			}
			if got := f.data(res.FileID); !bytes.Equal(got, data) {
				t.Fatalf("server has %d bytes, not the %d sent", len(got), len(data))
			}
			if res.FinalPath != "/final/dir/a.bin" || res.TotalSize != tc.size || res.StorageBackend != "fake" || len(res.ChecksumSHA256) != 64 {
				t.Errorf("result %+v", res)
			}
			log.check(t, tc.size, tc.parts)
			if f.maxIn > 3 {
				t.Errorf("%d parts at once, want at most 3", f.maxIn)
			}
		})
	}
}

// TestUploadLostResponse: the server keeps part 1 but the answer is lost; the re-send succeeds.
func TestUploadLostResponse(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, 100)
	var lost atomic.Bool
	f.partHook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n != 1 || !lost.CompareAndSwap(false, true) {
			return false
		}
		// Let the normal handler store the part (this hook declines the nested call), then
		// drop the connection instead of answering.
		f.part(discard{}, r, "up1", "1")
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return true
	}
	data := randomBytes(250)
	var log progressLog
	res, err := f.client(t, WithConcurrency(1)).Upload(t.Context(), "a", bytes.NewReader(data), 250, UploadOptions{Progress: log.record})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.data(res.FileID), data) || f.count("PUT /upload/up1/part/1") != 2 {
		t.Errorf("data equal %v, %d PUTs of part 1 (want 2)", bytes.Equal(f.data(res.FileID), data), f.count("PUT /upload/up1/part/1"))
	}
	log.check(t, 250, 3)
}

// discard is a ResponseWriter that drops the answer.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// TestUploadPartRefused: a 4xx on a part is not retried, stops the upload, and names the file id.
func TestUploadPartRefused(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, 100)
	f.partHook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 2 {
			fail(w, 401, "token_expired", "token expired")
			return true
		}
		return false
	}
	_, err := f.client(t, WithConcurrency(2)).Upload(t.Context(), "a", bytes.NewReader(randomBytes(1000)), 1000, UploadOptions{})
	ue, ok := errors.AsType[*UploadError](err)
	ae, ok2 := errors.AsType[*APIError](err)
	if !ok || ue.FileID != "up1" || !ok2 || ae.Code != "token_expired" {
		t.Fatalf("err = %v, want *UploadError up1 wrapping token_expired", err)
	}
	if n := f.count("PUT /upload/up1/part/2"); n != 1 {
		t.Errorf("part 2 sent %d times, want 1", n)
	}
	if f.count("POST /upload/up1/complete") != 0 || f.count("DELETE") != 0 {
		t.Error("complete or cancel called after a failed part")
	}
}

// TestUploadCancel: cancelling stops promptly, leaves the upload on the server (no DELETE)
// and returns context.Canceled in an *UploadError.
func TestUploadCancel(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, 100)
	ctx, cancel := context.WithCancel(t.Context())
	block := make(chan struct{})
	f.partHook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 3 {
			cancel()
			select { // hang until the client goes away
			case <-r.Context().Done():
			case <-block:
			}
			return true
		}
		return false
	}
	defer close(block)
	start := time.Now()
	_, err := f.client(t, WithConcurrency(1)).Upload(ctx, "a", bytes.NewReader(randomBytes(1000)), 1000, UploadOptions{})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned after %v", d)
	}
	ue, ok := errors.AsType[*UploadError](err)
	if !ok || ue.FileID != "up1" || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want *UploadError up1 wrapping context.Canceled", err)
	}
	if f.count("DELETE") != 0 || f.count("PUT /upload/up1/part/4") != 0 {
		t.Error("the upload was cancelled on the server, or parts were sent after the cancel")
	}
}

func TestUploadChecksumOption(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, 100)
	data := randomBytes(321)
	var log progressLog
	if _, err := f.client(t).Upload(t.Context(), "a", bytes.NewReader(data), 321, UploadOptions{ChecksumSHA256: true, Progress: log.record}); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if body := f.initBody; !bytes.Contains(body, []byte(`"checksum_sha256":"`+hex.EncodeToString(sum[:])+`"`)) {
		t.Errorf("init body %s lacks the file's checksum", body)
	}
	if first := log.reports[0]; first.Phase != PhaseHashing || first.FileID != "" {
		t.Errorf("first report %+v, want hashing", first)
	}
	log.check(t, 321, 4)
}
