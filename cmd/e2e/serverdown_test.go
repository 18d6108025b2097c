package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/e2e/internal/services"
	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// strictLeftovers makes leftovers of an interrupted delivery that are still
// on the server after a successful retry (an S3 multipart upload in progress,
// a hidden SMB temporary file) a test failure. The plugins remove them only
// when the server answers at the time of the failure, so for now they are
// only logged. TODO: set to true once the plugins clean up on the next Put.
const strictLeftovers = true

// TestServerDownDuringDelivery takes the S3 server or smbd away in the middle
// of a delivery, and delivers again once it is back:
//
//   - crash: SIGKILL; connections are reset at once. The server is then
//     started again on the same data.
//   - hang: SIGSTOP; connections stay open and nothing answers (a hung server
//     or a network partition): the host's PLUGIN_STALL_TIMEOUT (10 s here)
//     must end the delivery. The server is then resumed with SIGCONT.
//
// Either way the upload must become failed with a finalization_error, keep
// its staged parts and leave no object visible on the server; once the server
// is back, complete delivers the right bytes.
//
// Each case gets a private instance of scripts/test-services.sh (its own ports
// and state directory), so the shared services are never stopped.
func TestServerDownDuringDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts private test services and delivers 64 MiB files; skipped with -short")
	}
	t.Parallel()
	for _, which := range []string{"s3", "smb"} {
		for _, how := range []string{"crash", "hang"} {
			t.Run(which+"/"+how, func(t *testing.T) {
				t.Parallel()
				testServerDown(t, which, how)
			})
		}
	}
}

func testServerDown(t *testing.T, which, how string) {
	const (
		total = 64 * mib
		chunk = 8 * mib
		seed  = 40
		stall = 10 * time.Second
		// Generous: a crash ends the delivery within a second, a hang after
		// the stall timeout. The SMB plugin's own watchdog (2 minutes per
		// request) must not be what ends it.
		failTimeout = 90 * time.Second
	)
	svc := startPrivateServices(t)
	overrides := map[string]string{
		"CHUNK_SIZE_MB":        fmt.Sprint(chunk / mib),
		"PLUGIN_STALL_TIMEOUT": stall.String(),
	}
	var b backend
	switch which {
	case "s3":
		b = s3Backend(func(testing.TB) services.S3 { return svc.s3 })
		overrides["S3_CONCURRENCY"] = "1"
	case "smb":
		b = smbBackend(func(testing.TB) smbService { return svc.smb })
	}
	s := startServer(t, b, overrides)

	whole := generatedSum(seed, total, chunk)
	up := s.InitUpload(t, map[string]any{"filename": "down/big.bin", "total_size": total, "checksum_sha256": whole})
	s.uploadGenerated(t, up, seed, total, chunk, 4)
	id := up.FileID
	key := "down/" + id + "_big.bin"
	staged := harness.RegularFiles(t, s.Staging())
	if len(staged) == 0 {
		t.Fatal("nothing in TEMP_STORAGE_PATH after all parts were uploaded")
	}

	// complete waits for the delivery (up to COMPLETE_WAIT_SECONDS): call it
	// in the background and watch the status.
	type result struct {
		r   harness.Response
		err error
		at  time.Time
	}
	completed := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, s.URL("")+"/upload/"+id+"/complete", nil)
		req.Header.Set("X-API-Key", harness.APIKey)
		r, err := s.TrySend(req)
		completed <- result{r, err, time.Now()}
	}()
	var st harness.Status
	deadline := time.Now().Add(time.Minute)
	for {
		st = s.Status(t, id)
		if st.Status == "finalizing" && st.Phase == "finalizing" && st.BytesDelivered > 0 {
			break
		}
		if st.Status == "complete" || st.Status == "failed" || time.Now().After(deadline) {
			t.Fatalf("waiting for the delivery to be under way: status %+v", st)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// bytes_delivered counts what the host handed to the plugin, which
	// buffers: wait until the server holds part of the file (an SMB temporary
	// file, S3 parts of a multipart upload), so that the server goes away in
	// the middle of writing.
	var partial map[string]int64
	for !hasData(partial) {
		partial = b.objects(t, s)
		if st := s.Status(t, id); st.Status != "finalizing" || time.Now().After(deadline) {
			t.Fatalf("waiting for part of the file on the server (it holds %v): status %+v", partial, st)
		}
	}
	if how == "crash" {
		svc.kill(t, which)
	} else {
		svc.freeze(t, which)
	}
	downAt := time.Now()
	after := s.Status(t, id)
	t.Logf("%s server down (%s) holding %v; bytes_delivered %d of %d (%d a moment later, status %s)",
		which, how, partial, st.BytesDelivered, total, after.BytesDelivered, after.Status)
	if after.Status == "complete" {
		t.Fatalf("the delivery completed before the server was down (%+v): it must take longer", after)
	}

	// The upload fails, with a reason, and keeps its parts.
	deadline = downAt.Add(failTimeout)
	for {
		st = s.Status(t, id)
		if st.Status != "finalizing" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still finalizing %v after the server went down: %+v", failTimeout, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	failedAfter := time.Since(downAt)
	if st.Status != "failed" || st.Phase != "failed" || strings.TrimSpace(harness.Str(st.FinalizationError)) == "" ||
		harness.Str(st.FinalPath) != "" || st.UploadedParts != up.TotalParts {
		t.Fatalf("status after the server went down = %+v, want failed/failed with a finalization_error, no final_path and all parts uploaded", st)
	}
	t.Logf("status failed %v after the server went down: finalization_error %q",
		failedAfter.Round(10*time.Millisecond), harness.Str(st.FinalizationError))
	if how == "hang" && failedAfter < stall-time.Second {
		t.Logf("note: failed before the stall timeout of %v", stall)
	}
	if strings.Contains(harness.Str(st.FinalizationError), s.Staging()) || strings.Contains(harness.Str(st.FinalizationError), s.Dir) {
		t.Errorf("finalization_error names a local path: %q", harness.Str(st.FinalizationError))
	}
	select {
	case res := <-completed:
		if res.err != nil {
			t.Fatalf("complete: %v", res.err)
		}
		if res.r.Status == http.StatusAccepted {
			t.Logf("complete answered 202 (the delivery outlasted COMPLETE_WAIT_SECONDS)")
		} else {
			code := harness.ExpectErrorOneOf(t, res.r, map[string]int{"delivery_failed": 502, "backend_unavailable": 503})
			t.Logf("complete answered %d %s %v after the server went down: %s", res.r.Status, code,
				res.at.Sub(downAt).Round(time.Millisecond), bytes.TrimSpace(res.r.Body))
		}
	case <-time.After(time.Minute):
		t.Fatal("complete did not answer within a minute of the upload becoming failed")
	}
	if got := harness.RegularFiles(t, s.Staging()); st.DeliveryMode == "parts" {
		// Part-wise: a part is either still staged or held by the backend (and then no
		// longer needs its staged copy), never neither.
		full := s.Status(t, id)
		for name, size := range staged {
			if _, ok := got[name]; ok {
				continue
			}
			n, err := strconv.Atoi(strings.TrimSuffix(path.Base(name), ".part"))
			if err != nil || n >= len(full.Parts) || !full.Parts[n].Delivered {
				t.Errorf("staged part %s (%d bytes) is gone and the backend does not hold it: %+v", name, size, full.Parts)
			}
		}
		for name := range got {
			if _, ok := staged[name]; !ok {
				t.Errorf("TEMP_STORAGE_PATH holds %s after the failed delivery, which was not staged before", name)
			}
		}
	} else if !maps.Equal(got, staged) {
		t.Errorf("TEMP_STORAGE_PATH after the failed delivery: %v, want the staged parts %v", got, staged)
	}
	if how == "crash" {
		// (A hung server would make this wait for PLUGIN_HEALTH_TIMEOUT.)
		r := s.Do(t, http.MethodGet, "/health", nil, nil)
		if r.Status != http.StatusServiceUnavailable {
			t.Errorf("GET /health with the %s server down: got %v, want 503", which, r)
		} else {
			t.Logf("GET /health with the server down: %s", bytes.TrimSpace(r.Body))
		}
	}

	// Back up, on the same data: the object is not visible.
	if how == "crash" {
		svc.start(t)
	} else {
		svc.thaw(t, which)
	}
	waitHealth(t, s, time.Minute)
	left := b.objects(t, s)
	if size, ok := left[key]; ok {
		t.Errorf("after the failed delivery the object %s (%d bytes) is visible on the server", key, size)
	}
	if len(left) != 0 {
		t.Logf("the %s server holds after the failed delivery: %v", which, left)
	}

	// Retry: the same upload is delivered whole.
	start := time.Now()
	c := s.CompleteAndWait(t, id, 5*time.Minute)
	t.Logf("the second complete took %v", time.Since(start).Round(10*time.Millisecond))
	b.checkFinalPath(t, s, harness.Str(c.FinalPath), key)
	if harness.Str(c.ChecksumSHA256) != whole {
		t.Errorf("complete checksum_sha256 = %s, want %s", harness.Str(c.ChecksumSHA256), whole)
	}
	if size, sum := s.objectSum(t, harness.Str(c.FinalPath)); size != total || sum != whole {
		t.Errorf("delivered object: %d bytes, sha256 %s; want %d bytes, sha256 %s", size, sum, total, whole)
	}
	left = b.objects(t, s)
	if left[key] != total {
		t.Errorf("the %s server holds %v, want %s of %d bytes", which, left, key, total)
	}
	delete(left, key)
	if len(left) != 0 {
		msg := fmt.Sprintf("after the retry the %s server still holds leftovers of the interrupted delivery: %v", which, left)
		if strictLeftovers {
			t.Error(msg)
		} else {
			t.Log("KNOWN GAP: " + msg)
		}
	}
}

// generatedPart is part n of a generated file of total bytes in parts of
// chunk bytes: pseudo-random bytes made on the fly from seed and n.
func generatedPart(seed uint64, n int, total, chunk int64) (io.Reader, int64) {
	size := min(chunk, total-int64(n)*chunk)
	return generator(seed*1000+uint64(n), size), size
}

// generatedSum is the hex SHA-256 of the whole generated file.
func generatedSum(seed uint64, total, chunk int64) string {
	h := sha256.New()
	for n := 0; int64(n)*chunk < total; n++ {
		r, _ := generatedPart(seed, n, total, chunk)
		_, _ = io.Copy(h, r)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// uploadGenerated sends every part of a generated file, parallel at a time,
// without holding the file in memory, and asserts 200s.
func (s *server) uploadGenerated(tb testing.TB, up harness.InitResponse, seed uint64, total, chunk int64, parallel int) {
	tb.Helper()
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for n := range up.TotalParts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			body, size := generatedPart(seed, n, total, chunk)
			req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/upload/%s/part/%d", s.URL(""), up.FileID, n), io.NopCloser(body))
			if err != nil {
				tb.Error(err)
				return
			}
			req.ContentLength = size
			req.Header.Set("Authorization", "Bearer "+up.Parts[n].Token)
			req.Header.Set("Content-Type", "application/octet-stream")
			if r, err := s.TrySend(req); err != nil {
				tb.Errorf("PUT part %d: %v", n, err)
			} else if r.Status != http.StatusOK {
				tb.Errorf("PUT part %d: got %v, want 200", n, r)
			}
		})
	}
	wg.Wait()
	if tb.Failed() {
		tb.FailNow()
	}
}

// objectSum reads a delivered object from the server and returns its size
// and hex SHA-256.
func (s *server) objectSum(tb testing.TB, finalPath string) (int64, string) {
	tb.Helper()
	rc, err := s.backend.open(tb, s, finalPath)
	if err != nil {
		tb.Fatalf("opening the delivered object %q: %v", finalPath, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		tb.Fatalf("reading the delivered object %q: %v", finalPath, err)
	}
	return n, hex.EncodeToString(h.Sum(nil))
}

// hasData reports whether any of objs holds bytes.
func hasData(objs map[string]int64) bool {
	for _, size := range objs {
		if size > 0 {
			return true
		}
	}
	return false
}

// waitHealth waits until GET /health answers 200.
func waitHealth(tb testing.TB, s *server, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	var last harness.Response
	for time.Now().Before(deadline) {
		last = s.Do(tb, http.MethodGet, "/health", nil, nil)
		if last.Status == http.StatusOK {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	tb.Fatalf("GET /health not 200 within %v of the server coming back: %v", timeout, last)
}
