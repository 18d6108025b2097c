package reliability

import (
	"encoding/base64"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// tusOffset sends HEAD to the tus URL loc and returns its Upload-Offset.
func tusOffset(tb testing.TB, s *server, loc string) int64 {
	tb.Helper()
	r := s.Do(tb, http.MethodHead, loc, nil, harness.TusHeaders(nil))
	if r.Status != http.StatusOK {
		tb.Fatalf("HEAD %s: %v", loc, r)
	}
	n, err := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		tb.Fatalf("HEAD %s: Upload-Offset %q: %v", loc, r.Header.Get("Upload-Offset"), err)
	}
	return n
}

// TestHostKilledMidPatch kills the host (SIGKILL) while a tus PATCH is streaming, past
// whole parts and into a partial one, and restarts it on the same data. HEAD then reports
// an offset no lower than the last one it reported before the kill (what HEAD says is on
// disk) and no higher than the bytes sent; a PATCH at an older offset gets 409 with it; the
// client resumes from it, the last PATCH completes the upload, and the delivered file is
// exactly the bytes, with nothing left in staging.
func TestHostKilledMidPatch(t *testing.T) {
	t.Parallel()
	s := startServer(t, "local", nil) // 1 MiB parts
	data := harness.RandomBytes(6*mib+300_000, 9)
	r := s.Do(t, http.MethodPost, "/files/", nil, harness.TusHeaders(map[string]string{
		"X-API-Key":       harness.APIKey,
		"Upload-Length":   strconv.Itoa(len(data)),
		"Upload-Metadata": "filename " + base64.StdEncoding.EncodeToString([]byte("crash/tus.bin")),
	}))
	loc := r.Header.Get("Location")
	if r.Status != http.StatusCreated || !strings.HasPrefix(loc, "/files/") {
		t.Fatalf("tus create: got %v (Location %q), want 201 with a /files/ URL", r, loc)
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(loc, "/files/"), ".")

	// 3.5 MiB of the body: parts 0 to 2 whole, half of part 3 in its partial file.
	sent := 3*mib + mib/2
	c := s.OpenRaw(t, http.MethodPatch, loc, harness.TusHeaders(map[string]string{
		"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}), int64(len(data)))
	defer c.Close()
	if err := c.Write(data[:sent]); err != nil {
		t.Fatal(err)
	}
	var before int64
	if !harness.WaitFor(30*time.Second, func() bool { before = tusOffset(t, s, loc); return before >= 3*mib }) {
		t.Fatalf("HEAD during the PATCH still at %d after 30 s, want at least the 3 whole parts sent (%d)", before, 3*mib)
	}
	time.Sleep(200 * time.Millisecond)
	before = tusOffset(t, s, loc)
	s.Kill(t)
	hostKills.Add(1)
	c.Close()
	t.Logf("host killed with %d bytes of the PATCH sent; HEAD said %d", sent, before)

	s.Start(t)
	after := tusOffset(t, s, loc)
	if after < before || after > int64(sent) {
		t.Fatalf("HEAD after the restart = %d, want between %d (HEAD before the kill) and %d (bytes sent)", after, before, sent)
	}
	t.Logf("HEAD after the restart: %d", after)
	if after > 0 {
		stale := s.Do(t, http.MethodPatch, loc, strings.NewReader("x"), harness.TusHeaders(map[string]string{
			"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}))
		if stale.Status != http.StatusConflict || stale.Header.Get("Upload-Offset") != strconv.FormatInt(after, 10) {
			t.Errorf("PATCH at offset 0 after the restart: got %v (Upload-Offset %q), want 409 with %d",
				stale, stale.Header.Get("Upload-Offset"), after)
		}
	}

	rest := s.Do(t, http.MethodPatch, loc, strings.NewReader(string(data[after:])), harness.TusHeaders(map[string]string{
		"Upload-Offset": strconv.FormatInt(after, 10), "Content-Type": "application/offset+octet-stream"}))
	if rest.Status != http.StatusNoContent || rest.Header.Get("Upload-Offset") != strconv.Itoa(len(data)) {
		t.Fatalf("PATCH of the rest from %d: got %v (Upload-Offset %q), want 204 at %d", after, rest, rest.Header.Get("Upload-Offset"), len(data))
	}
	done := s.WaitComplete(t, id, time.Minute)
	if sum, n := harness.FileSHA256(harness.Str(done.FinalPath)); sum != harness.SHA256Hex(data) || n != int64(len(data)) {
		t.Errorf("delivered file: %d bytes, sha256 %s; want %d bytes, %s", n, sum, len(data), harness.SHA256Hex(data))
	}
	if left, _ := filepath.Glob(filepath.Join(s.Staging(), id, "*")); len(left) > 0 {
		t.Errorf("staging of the delivered upload still holds %v", left)
	}
}
