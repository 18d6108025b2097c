package reliability

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

func randomUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// TestSweeper checks the cleanup sweeps that can be provoked without changing the clock
// (expiry needs UPLOAD_TTL_HOURS, whole hours; it is unit-tested in host/upload):
// orphaned staging directories are removed by the periodic sweep (CLEANUP_INTERVAL=1s)
// while the staged parts of a live upload are kept, and temporaries of part writes are
// removed at start.
func TestSweeper(t *testing.T) {
	t.Parallel()
	// The parts are staged, not written into the local backend's file: staging is swept.
	s := startServer(t, "local", map[string]string{"CLEANUP_INTERVAL": "1s", "PLUGIN_PART_FILES": "false"})
	data := harness.RandomBytes(2*mib, 6)
	parts := harness.PartData(data, mib)
	up := s.InitUpload(t, map[string]any{"filename": "sweep/a.bin", "total_size": len(data)})
	s.MustPutPart(t, up.FileID, 0, up.Parts[0].Token, parts[0])

	// An orphan: a staging directory of no upload, created while the host runs.
	orphan := filepath.Join(s.Staging(), randomUUID())
	if err := os.MkdirAll(orphan, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(orphan, "000000.part"), harness.RandomBytes(1000, 7), 0o600); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	if !harness.WaitFor(5*time.Second, func() bool {
		_, err := os.Stat(orphan)
		return errors.Is(err, fs.ErrNotExist)
	}) {
		t.Fatalf("orphaned staging %s still there 5 s later (CLEANUP_INTERVAL=1s)", orphan)
	}
	t.Logf("orphaned staging removed %v after it was created", time.Since(created).Round(time.Millisecond))
	// A few more sweeps: the live upload keeps its part.
	time.Sleep(2500 * time.Millisecond)
	if got := s.keptParts(t, up.FileID); !slices.Equal(got, []string{"000000.part"}) {
		t.Errorf("staged or delivered parts of the pending upload after sweeps: %v, want [000000.part]", got)
	}

	// A temporary left by a crash, created while the host is stopped, goes at start.
	if code := s.Stop(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	tmp := filepath.Join(s.Staging(), up.FileID, ".000001.xyz.tmp")
	if err := os.WriteFile(tmp, harness.RandomBytes(5000, 8), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Start(t)
	if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary %s still there once the host answers /health (err %v)", tmp, err)
	}
	if got := s.keptParts(t, up.FileID); !slices.Equal(got, []string{"000000.part"}) {
		t.Errorf("staged or delivered parts of the pending upload after the restart: %v, want [000000.part]", got)
	}
	st := s.Status(t, up.FileID)
	if st.Status != "pending" || st.UploadedParts != 1 || harness.Str(st.Parts[0].ChecksumSHA256) != harness.SHA256Hex(parts[0]) {
		t.Errorf("status after the restart: %+v", st)
	}
	s.MustPutPart(t, up.FileID, 1, up.Parts[1].Token, parts[1])
	c := s.CompleteAndWait(t, up.FileID, time.Minute)
	if sum, _ := harness.FileSHA256(harness.Str(c.FinalPath)); sum != harness.SHA256Hex(data) {
		t.Errorf("delivered sha256 %s, want %s", sum, harness.SHA256Hex(data))
	}
	// A delivered upload's staging is gone, and the sweeper does not bring anything back.
	s.waitUnstaged(t, up.FileID)
	time.Sleep(1500 * time.Millisecond)
	if got := s.StagedFiles(t, up.FileID); got != nil {
		t.Errorf("staging after delivery and sweeps: %v", got)
	}
}

// TestCancelDuringPart cancels an upload while a slow client is sending one of its parts:
// the cancel answers 200 at once, the part then gets a JSON 404, and nothing is left.
func TestCancelDuringPart(t *testing.T) {
	t.Parallel()
	s := startServer(t, "local", nil)
	data := harness.RandomBytes(2*mib, 9)
	parts := harness.PartData(data, mib)
	up := s.InitUpload(t, map[string]any{"filename": "cancel/a.bin", "total_size": len(data)})
	s.MustPutPart(t, up.FileID, 1, up.Parts[1].Token, parts[1])

	c := s.OpenPart(t, up.FileID, 0, up.Parts[0].Token, mib)
	defer c.Close()
	if err := c.Write(parts[0][:mib/4]); err != nil {
		t.Fatal(err)
	}
	if !harness.WaitFor(10*time.Second, func() bool { return s.PartsInFlight() == 1 }) {
		t.Fatalf("part 0 is not being received (parts in flight: %d)", s.PartsInFlight())
	}
	start := time.Now()
	r := s.API(t, http.MethodDelete, "/upload/"+up.FileID, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("DELETE during a part upload: got %v, want 200", r)
	}
	t.Logf("DELETE answered in %v with a part in flight", time.Since(start).Round(time.Millisecond))

	if err := c.WriteSlowly(parts[0][mib/4:], 4, 400*time.Millisecond); err != nil {
		t.Logf("the rest of the part could not be sent (%v); reading the answer", err)
	}
	pr, err := c.Response(20 * time.Second)
	if err != nil {
		t.Fatalf("no answer to the part whose upload was cancelled: %v", err)
	}
	harness.ExpectErrorOneOf(t, pr, map[string]int{"upload_not_found": 404})
	t.Logf("the part in flight got %v", pr)

	if !harness.WaitFor(2*time.Second, func() bool { return s.StagedFiles(t, up.FileID) == nil }) {
		t.Errorf("TEMP_STORAGE_PATH/%s still holds %v after the cancel", up.FileID, s.StagedFiles(t, up.FileID))
	}
	harness.ExpectError(t, s.API(t, http.MethodGet, "/upload/"+up.FileID+"/status", nil), 404, "upload_not_found")
	// Nothing was delivered, and the abort of the unfinished object (queued with the
	// cancel, run in the background) leaves nothing of it.
	if !harness.WaitFor(10*time.Second, func() bool { return len(harness.RegularFiles(t, s.objectRoot())) == 0 }) {
		t.Errorf("the backend holds %v", harness.RegularFiles(t, s.objectRoot()))
	}
}
