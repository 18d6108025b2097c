package reliability

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// hostKills counts the host processes the tests SIGKILLed.
var hostKills atomic.Int64

var partFile = regexp.MustCompile(`^\d{6}\.part$`)

// TestHostKilledMidPart kills the host (SIGKILL) while a slow client has sent half of a
// part, and restarts it on the same data: every part acknowledged before is still
// uploaded with its checksum, the interrupted part is pending, no temporary file is left,
// and the upload completes with the exact bytes once the part is sent again.
func TestHostKilledMidPart(t *testing.T) {
	t.Parallel()
	// Staging's temporaries are what this test looks at: parts are staged, not written
	// into the local backend's file (TestHostKilledMidPartInPlace).
	s := startServer(t, "local", map[string]string{"PLUGIN_PART_FILES": "false"})
	m := startMidPart(t, s, "crash/part.bin", 3)
	up, parts, acked, data := m.up, m.parts, m.acked, m.data
	// Wait until the host is writing the part to its temporary file (staging writes
	// whole 1 MiB blocks, so half a part may not be on disk yet), and a little more for
	// it to take the half sent.
	dir := filepath.Join(s.Staging(), up.FileID)
	var tmp string
	if !harness.WaitFor(10*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, ".000002.*.tmp"))
		if len(m) == 1 {
			tmp = m[0]
			return true
		}
		return false
	}) {
		t.Fatalf("no temporary file of part 2 in %s: %v", dir, s.StagedFiles(t, up.FileID))
	}
	time.Sleep(200 * time.Millisecond)
	orphan := s.Kill(t)
	hostKills.Add(1)
	t.Logf("host killed with part 2 half sent (temporary %s); its plugin outlived it: %v", filepath.Base(tmp), orphan)
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("the temporary file should still be there after the crash: %v", err)
	}

	s.Start(t)
	st := s.Status(t, up.FileID)
	if st.Status != "pending" || st.UploadedParts != 3 || len(st.Parts) != 4 {
		t.Fatalf("status after the restart = %+v, want pending with 3 of 4 parts", st)
	}
	for _, p := range st.Parts {
		want, ok := acked[p.Part]
		switch {
		case ok && (p.Status != "uploaded" || harness.Str(p.ChecksumSHA256) != want):
			t.Errorf("part %d after the restart: %+v, want uploaded with checksum %s", p.Part, p, want)
		case !ok && (p.Status != "pending" || harness.Str(p.ChecksumSHA256) != ""):
			t.Errorf("part %d after the restart: %+v, want pending without checksum", p.Part, p)
		}
	}
	staged := s.StagedFiles(t, up.FileID)
	if kept, want := s.keptParts(t, up.FileID), []string{"000000.part", "000001.part", "000003.part"}; !slices.Equal(kept, want) {
		t.Errorf("TEMP_STORAGE_PATH/<id> after the restart holds %v (staged or delivered: %v), want only %v", staged, kept, want)
	}
	for _, name := range staged {
		if !partFile.MatchString(name) {
			t.Errorf("unexpected file %s in staging", name)
		}
	}
	// The parts on disk are the acknowledged bytes.
	for n, want := range acked {
		if !slices.Contains(staged, partName(n)) {
			continue // delivered: the backend holds it, checked with the whole file below
		}
		if sum, _ := harness.FileSHA256(filepath.Join(dir, partName(n))); sum != want {
			t.Errorf("staged part %d has sha256 %s, want %s", n, sum, want)
		}
	}

	s.MustPutPart(t, up.FileID, 2, up.Parts[2].Token, parts[2])
	done := s.CompleteAndWait(t, up.FileID, time.Minute)
	if sum, n := harness.FileSHA256(harness.Str(done.FinalPath)); sum != harness.SHA256Hex(data) || n != int64(len(data)) {
		t.Errorf("delivered file: %d bytes, sha256 %s; want %d bytes, %s", n, sum, len(data), harness.SHA256Hex(data))
	}
}

func partName(n int) string { return fmt.Sprintf("%06d.part", n) }

// midPart is an upload of 4 parts of 1 MiB with parts 0, 1 and 3 acknowledged and half of
// part 2 sent on conn, which the test's cleanup closes.
type midPart struct {
	data  []byte
	parts [][]byte
	up    harness.InitResponse
	acked map[int]string // part number → the checksum it was acknowledged with
	conn  *harness.RawConn
}

func startMidPart(t *testing.T, s *server, filename string, seed uint64) midPart {
	t.Helper()
	m := midPart{data: harness.RandomBytes(4*mib, seed), acked: map[int]string{}}
	m.parts = harness.PartData(m.data, mib)
	m.up = s.InitUpload(t, map[string]any{"filename": filename, "total_size": len(m.data)})
	for _, n := range []int{0, 1, 3} {
		m.acked[n] = s.MustPutPart(t, m.up.FileID, n, m.up.Parts[n].Token, m.parts[n]).ChecksumSHA256
	}
	m.conn = s.OpenPart(t, m.up.FileID, 2, m.up.Parts[2].Token, mib)
	t.Cleanup(func() { m.conn.Close() })
	if err := m.conn.Write(m.parts[2][:mib/2]); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestHostKilledMidPartInPlace kills the host (SIGKILL) while a slow client has sent half
// of a part that the host writes straight into the local backend's unfinished file (part
// files), and restarts it on the same data: the parts acknowledged before are uploaded and
// delivered, the interrupted one is pending, nothing was staged, nothing is visible, and
// the upload completes with the exact bytes once the part is sent again.
func TestHostKilledMidPartInPlace(t *testing.T) {
	t.Parallel()
	s := startServer(t, "local", nil)
	m := startMidPart(t, s, "crash/in-place.bin", 13)
	up, parts, acked, data := m.up, m.parts, m.acked, m.data
	if !harness.WaitFor(10*time.Second, func() bool { return s.PartsInFlight() == 1 }) {
		t.Fatalf("part 2 is not being received (parts in flight: %d)", s.PartsInFlight())
	}
	time.Sleep(200 * time.Millisecond) // for the host to take the half sent
	s.Kill(t)
	hostKills.Add(1)

	s.Start(t)
	st := s.Status(t, up.FileID)
	if st.Status != "pending" || st.UploadedParts != 3 || st.DeliveredParts != 3 {
		t.Fatalf("status after the restart = %+v, want pending with 3 of 4 parts uploaded and delivered", st)
	}
	for _, p := range st.Parts {
		want, ok := acked[p.Part]
		switch {
		case ok && (p.Status != "uploaded" || !p.Delivered || harness.Str(p.ChecksumSHA256) != want):
			t.Errorf("part %d after the restart: %+v, want uploaded and delivered with checksum %s", p.Part, p, want)
		case !ok && (p.Status != "pending" || harness.Str(p.ChecksumSHA256) != ""):
			t.Errorf("part %d after the restart: %+v, want pending without checksum", p.Part, p)
		}
	}
	if staged := harness.RegularFiles(t, s.Staging()); len(staged) != 0 {
		t.Errorf("staging holds %v; the parts were written into the backend's file", staged)
	}
	if visible := harness.VisibleFiles(harness.RegularFiles(t, s.objectRoot())); len(visible) != 0 {
		t.Errorf("visible in the backend before complete: %v", visible)
	}
	s.MustPutPart(t, up.FileID, 2, up.Parts[2].Token, parts[2])
	done := s.CompleteAndWait(t, up.FileID, time.Minute)
	if sum, n := harness.FileSHA256(harness.Str(done.FinalPath)); sum != harness.SHA256Hex(data) || n != int64(len(data)) {
		t.Errorf("delivered file: %d bytes, sha256 %s; want %d bytes, %s", n, sum, len(data), harness.SHA256Hex(data))
	}
}

// TestHostKilledMidDelivery kills the host (SIGKILL) while the plugin holds a delivery
// (hang-put), and restarts it: the upload is not stuck in finalizing. The host resumes the
// delivery by itself, or leaves the upload failed and retryable; either way it ends
// complete with the exact bytes.
func TestHostKilledMidDelivery(t *testing.T) {
	t.Parallel()
	s := startServer(t, "fault", map[string]string{"CHUNK_SIZE_MB": "4", "COMPLETE_WAIT_SECONDS": "0"})
	const total = 32 * mib
	data := harness.RandomBytes(total, 4)
	whole := harness.SHA256Hex(data)
	up := s.InitUpload(t, map[string]any{"filename": "crash/delivery.bin", "total_size": total})
	s.UploadParts(t, up, harness.PartData(data, 4*mib), 4)
	key := "crash/" + up.FileID + "_delivery.bin"
	final := filepath.Join(s.objectRoot(), filepath.FromSlash(key))

	s.fault(t, "hang-put", true)
	r := s.Complete(t, up.FileID)
	if r.Status != http.StatusAccepted {
		t.Fatalf("complete with COMPLETE_WAIT_SECONDS=0: got %v, want 202", r)
	}
	if !harness.WaitFor(30*time.Second, func() bool { return s.puts(t, key) == 1 }) {
		t.Fatal("the delivery did not reach the plugin within 30 s")
	}
	if st := s.Status(t, up.FileID); st.Status != "finalizing" {
		t.Fatalf("status before the crash = %+v, want finalizing", st)
	}
	orphan := s.Kill(t)
	hostKills.Add(1)
	t.Logf("host killed mid-delivery; its (hung) plugin outlived it: %v", orphan)
	s.fault(t, "hang-put", false)

	watch := watchFinal(final, total, whole)
	start := time.Now()
	s.Start(t)
	var st harness.Status
	ok := harness.WaitFor(time.Minute, func() bool {
		st = s.Status(t, up.FileID)
		return st.Status == "complete" || st.Status == "failed"
	})
	if !ok {
		t.Fatalf("upload still %q a minute after the restart: %+v", st.Status, st)
	}
	t.Logf("after the restart the upload became %s in %v without another complete call", st.Status, time.Since(start).Round(time.Millisecond))
	if st.Status == "failed" {
		if strings.TrimSpace(harness.Str(st.FinalizationError)) == "" {
			t.Errorf("failed without a finalization_error: %+v", st)
		}
		s.CompleteAndWait(t, up.FileID, time.Minute)
	}
	c := s.WaitComplete(t, up.FileID, time.Minute)
	watch.finish(t)
	if sum, n := harness.FileSHA256(final); harness.Str(c.FinalPath) != final || sum != whole || n != total {
		t.Errorf("delivered %s: %d bytes, sha256 %s; want %s, %d bytes, %s", harness.Str(c.FinalPath), n, sum, final, total, whole)
	}
	if n := s.puts(t, key); n != 2 {
		t.Errorf("the plugin received %d Puts of %s, want 2 (the hung one, the resumed one)", n, key)
	}
	s.waitUnstaged(t, up.FileID)
}

// TestGracefulShutdown sends SIGTERM while a slow client is sending a part: the host
// stops accepting connections at once, the part in flight is still acknowledged (200),
// the host exits with status 0 and stops its plugin, and after a restart the part is
// uploaded.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	s := startServer(t, "local", nil)
	data := harness.RandomBytes(2*mib, 5)
	parts := harness.PartData(data, mib)
	up := s.InitUpload(t, map[string]any{"filename": "term/a.bin", "total_size": len(data)})
	s.MustPutPart(t, up.FileID, 0, up.Parts[0].Token, parts[0])
	plugin := s.PluginPID(t)
	host := s.Cur()

	c := s.OpenPart(t, up.FileID, 1, up.Parts[1].Token, mib)
	defer c.Close()
	if err := c.Write(parts[1][:mib/8]); err != nil {
		t.Fatal(err)
	}
	// SIGTERM only once the host is reading the part: a connection still in the
	// listener's accept queue is reset when the listener closes.
	if !harness.WaitFor(10*time.Second, func() bool { return s.PartsInFlight() == 1 }) {
		t.Fatalf("part 1 is not being received (parts in flight: %d)", s.PartsInFlight())
	}
	addr := s.Addr()
	termAt := time.Now()
	if err := host.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused while the part is still in flight.
	var refusedAfter time.Duration
	if !harness.WaitFor(3*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			refusedAfter = time.Since(termAt)
			return errors.Is(err, syscall.ECONNREFUSED)
		}
		conn.Close()
		return false
	}) {
		t.Errorf("the host still accepts connections 3 s after SIGTERM")
	}
	if !host.Running() {
		r, err := c.Response(time.Second)
		t.Fatalf("the host exited (%v) with a part in flight; the part got %v (%v)", host.WaitErr, r, err)
	}
	t.Logf("new connections refused %v after SIGTERM", refusedAfter.Round(time.Millisecond))
	// The rest of the part, over about 2 s.
	if err := c.WriteSlowly(parts[1][mib/8:], 14, 2*time.Second); err != nil {
		t.Fatalf("sending the rest of the part after SIGTERM: %v", err)
	}
	r, err := c.Response(20 * time.Second)
	if err != nil {
		t.Fatalf("no answer to the part in flight: %v", err)
	}
	if r.Status != http.StatusOK {
		t.Fatalf("part in flight during shutdown: got %v, want 200", r)
	}
	p := harness.Decode[harness.PartResponse](t, r)
	if p.ChecksumSHA256 != harness.SHA256Hex(parts[1]) || p.UploadedParts != 2 {
		t.Errorf("part answer %+v, want checksum %s and 2 parts uploaded", p, harness.SHA256Hex(parts[1]))
	}
	select {
	case <-host.Exited:
	case <-time.After(harness.DrainTimeout):
		t.Fatalf("the host did not exit within %v of SIGTERM", harness.DrainTimeout)
	}
	t.Logf("host exited %v after SIGTERM with %v", time.Since(termAt).Round(time.Millisecond), host.WaitErr)
	if code := host.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if !harness.WaitFor(5*time.Second, func() bool { return !harness.Alive(plugin) }) {
		t.Errorf("plugin %d still runs after the host exited", plugin)
	}

	s.Start(t)
	st := s.Status(t, up.FileID)
	if st.UploadedParts != 2 || st.Parts[1].Status != "uploaded" || harness.Str(st.Parts[1].ChecksumSHA256) != harness.SHA256Hex(parts[1]) {
		t.Errorf("after the restart: %+v, want part 1 uploaded with its checksum", st)
	}
	done := s.CompleteAndWait(t, up.FileID, time.Minute)
	if sum, _ := harness.FileSHA256(harness.Str(done.FinalPath)); sum != harness.SHA256Hex(data) {
		t.Errorf("delivered sha256 %s, want %s", sum, harness.SHA256Hex(data))
	}
}

// TestPluginExitsWithHost kills the host (SIGKILL), which cannot stop its plugin: the
// plugin must notice and exit by itself, or every crash of the host leaks a plugin
// process (and, for a remote backend, its connections).
func TestPluginExitsWithHost(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"local", "fault"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, backend, nil)
			plugin := s.PluginPID(t)
			host := s.Cur()
			if err := host.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-host.Exited
			if !harness.WaitFor(10*time.Second, func() bool { return !harness.Alive(plugin) }) {
				t.Errorf("the %s plugin (pid %d) still runs 10 s after its host was killed", backend, plugin)
			}
			harness.KillPlugin(plugin)
		})
	}
}

// TestShutdownDuringDelivery sends SIGTERM while the plugin holds a delivery (hang-put,
// ignoring cancellation): the host still exits with status 0 within its drain deadline,
// leaves the upload to be resumed, and after a restart the delivery resumes by itself and
// ends with the exact bytes.
func TestShutdownDuringDelivery(t *testing.T) {
	t.Parallel()
	s := startServer(t, "fault", map[string]string{"CHUNK_SIZE_MB": "4", "COMPLETE_WAIT_SECONDS": "0"})
	const total = 16 * mib
	data := harness.RandomBytes(total, 16)
	up := s.InitUpload(t, map[string]any{"filename": "term/delivery.bin", "total_size": total})
	s.UploadParts(t, up, harness.PartData(data, 4*mib), 4)
	key := "term/" + up.FileID + "_delivery.bin"
	s.fault(t, "hang-put", true)
	if r := s.Complete(t, up.FileID); r.Status != http.StatusAccepted {
		t.Fatalf("complete: got %v, want 202", r)
	}
	if !harness.WaitFor(30*time.Second, func() bool { return s.puts(t, key) == 1 }) {
		t.Fatal("the delivery did not reach the plugin within 30 s")
	}
	plugin := s.PluginPID(t)
	start := time.Now()
	code := s.Stop(t)
	t.Logf("host exited %v after SIGTERM (code %d) with a delivery held by the plugin", time.Since(start).Round(time.Millisecond), code)
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if !harness.WaitFor(5*time.Second, func() bool { return !harness.Alive(plugin) }) {
		t.Errorf("the hung plugin %d still runs after the host exited", plugin)
	}
	s.fault(t, "hang-put", false)
	s.Start(t)
	var st harness.Status
	if !harness.WaitFor(time.Minute, func() bool {
		st = s.Status(t, up.FileID)
		return st.Status == "complete" || st.Status == "failed"
	}) {
		t.Fatalf("upload still %q a minute after the restart", st.Status)
	}
	if st.Status != "complete" {
		t.Errorf("after the restart the upload became %s (%q), want the delivery resumed to complete", st.Status, harness.Str(st.FinalizationError))
		s.CompleteAndWait(t, up.FileID, time.Minute)
	}
	c := s.WaitComplete(t, up.FileID, time.Minute)
	if sum, n := harness.FileSHA256(harness.Str(c.FinalPath)); sum != harness.SHA256Hex(data) || n != total {
		t.Errorf("delivered %d bytes, sha256 %s; want %d, %s", n, sum, total, harness.SHA256Hex(data))
	}
}

// TestNoTemporariesLeftAfterShutdown: a host stopped with SIGTERM leaves nothing in its
// TMPDIR (the plugin's socket directory, $TMPDIR/chunked-uploader-plugin-*, goes with the
// plugin), also after a plugin restart.
func TestNoTemporariesLeftAfterShutdown(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	s := startServer(t, "local", map[string]string{"TMPDIR": tmp})
	killPlugin(t, s)
	s.WaitHealth(t, http.StatusOK, 15*time.Second) // restarts the plugin
	if code := s.Stop(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	time.Sleep(500 * time.Millisecond)
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 0 {
		t.Errorf("TMPDIR holds %v after the host exited, want nothing", names)
	}
}
