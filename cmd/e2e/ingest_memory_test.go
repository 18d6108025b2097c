package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// TestHostMemoryEightParts sends 8 parts of 50 MiB at once and checks DESIGN.md's target:
// host resident memory at most 64 MiB with 8 parts of 50 MiB in flight. The staging
// pipeline holds at most 1 MiB per part write and the bytes in flight to the disk stay in
// the page cache, which does not count as the host's memory.
func TestHostMemoryEightParts(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 400 MiB; skipped with -short")
	}
	t.Parallel()
	const (
		chunk  = 50 * mib
		parts  = 8
		maxHWM = 64 * mib
	)
	s := startServer(t, localBackend, map[string]string{"CHUNK_SIZE_MB": "50"})
	up := s.InitUpload(t, map[string]any{"filename": "big/eight.bin", "total_size": chunk * parts})
	if up.TotalParts != parts {
		t.Fatalf("init: total_parts %d, want %d", up.TotalParts, parts)
	}
	// Every body starts at once: each waits for the others to be connected before sending.
	var started sync.WaitGroup
	started.Add(parts)
	var wg sync.WaitGroup
	for n := range parts {
		wg.Go(func() {
			h := sha256.New()
			gen := io.TeeReader(generator(uint64(100+n), chunk), h)
			body := &startTogether{r: gen, started: &started}
			req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/upload/%s/part/%d", s.URL(""), up.FileID, n), body)
			if err != nil {
				t.Error(err)
				return
			}
			req.ContentLength = chunk
			req.Header.Set("Authorization", "Bearer "+up.Parts[n].Token)
			r, err := s.TrySend(req)
			if err != nil {
				t.Errorf("part %d: %v", n, err)
				return
			}
			var p harness.PartResponse
			if r.Status != http.StatusOK || json.Unmarshal(r.Body, &p) != nil || p.ChecksumSHA256 != hex.EncodeToString(h.Sum(nil)) {
				t.Errorf("part %d: got %v, want 200 with checksum_sha256 %x", n, r, h.Sum(nil))
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if got := s.Status(t, up.FileID).UploadedParts; got != parts {
		t.Errorf("uploaded_parts = %d, want %d", got, parts)
	}
	hwm := procStatusKiB(t, s.PID(), "VmHWM") * 1024
	t.Logf("host VmHWM with %d parts of %d MiB in flight: %.1f MiB", parts, chunk/mib, float64(hwm)/mib)
	if hwm > maxHWM {
		t.Errorf("host VmHWM = %.1f MiB with %d parts in flight, want at most %d MiB", float64(hwm)/mib, parts, maxHWM/mib)
	}
}

// startTogether holds its first Read until every body of the group has been asked for
// data, so that all parts are in flight at the same time.
type startTogether struct {
	r       io.Reader
	started *sync.WaitGroup
	once    sync.Once
}

func (s *startTogether) Read(p []byte) (int, error) {
	s.once.Do(func() {
		s.started.Done()
		s.started.Wait()
	})
	return s.r.Read(p)
}
