package reliability

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// pluginKills counts the plugin processes the tests SIGKILLed while the host served.
var pluginKills atomic.Int64

// finalWatch polls the final path of a delivery and records every moment a file there
// had other content than the source: a delivered file must appear whole or not at all.
type finalWatch struct {
	stop       chan struct{}
	done       chan struct{}
	mu         sync.Mutex
	violations []string
	polls      int
	seenWhole  int
}

func watchFinal(path string, wantSize int64, wantSum string) *finalWatch {
	w := &finalWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var verified os.FileInfo
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			fi, err := os.Stat(path)
			w.mu.Lock()
			w.polls++
			w.mu.Unlock()
			if err != nil {
				continue
			}
			if fi.Size() != wantSize {
				w.add(fmt.Sprintf("%s visible with %d bytes, want %d", path, fi.Size(), wantSize))
				continue
			}
			if verified != nil && os.SameFile(verified, fi) && verified.ModTime().Equal(fi.ModTime()) {
				continue
			}
			sum, n := harness.FileSHA256(path)
			if n >= 0 && sum != wantSum {
				w.add(fmt.Sprintf("%s visible with sha256 %s, want %s", path, sum, wantSum))
				continue
			}
			verified = fi
			w.mu.Lock()
			w.seenWhole++
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *finalWatch) add(v string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.violations) < 10 {
		w.violations = append(w.violations, v)
	}
}

// finish stops the watch and fails the test for every violation seen.
func (w *finalWatch) finish(tb testing.TB) {
	tb.Helper()
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range w.violations {
		tb.Errorf("final key visible with wrong content: %s", v)
	}
	tb.Logf("final key watched over %d polls, %d of them saw the whole file", w.polls, w.seenWhole)
}

// checkHealth asserts that a /health answer is the documented JSON with the given HTTP
// status.
func checkHealth(tb testing.TB, r harness.Response, want int, backend string) {
	tb.Helper()
	if r.Status != want {
		tb.Errorf("GET /health: got %v, want %d", r, want)
		return
	}
	h := harness.Decode[harness.HealthResponse](tb, r)
	// A missing storage object leaves BackendType empty, which no backend is called.
	if h.Storage.BackendType != backend {
		tb.Errorf("GET /health: %v, want storage.backend_type %q", r, backend)
		return
	}
	switch want {
	case http.StatusOK:
		if h.Status != "ok" || h.Storage.Status != "healthy" {
			tb.Errorf("GET /health: %v, want status ok, storage healthy", r)
		}
	case http.StatusServiceUnavailable:
		if h.Status != "degraded" || h.Storage.Status != "unavailable" || h.Storage.Message == nil || *h.Storage.Message == "" {
			tb.Errorf("GET /health: %v, want status degraded, storage unavailable with a message", r)
		}
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("GET /health: Content-Type %q, want JSON", ct)
	}
}

// killPlugin SIGKILLs the current plugin process and waits until it is gone.
func killPlugin(tb testing.TB, s *server) int {
	tb.Helper()
	pid := s.PluginPID(tb)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		tb.Fatalf("kill -9 plugin %d: %v", pid, err)
	}
	pluginKills.Add(1)
	harness.WaitGone(tb, pid, 10*time.Second)
	return pid
}

// TestPluginKilledMidDelivery kills the plugin (SIGKILL) while it is in the middle of a
// delivery of 64 MiB. The host keeps serving, the upload becomes failed and retryable,
// /health says 503 while the plugin cannot come back and 200 once it can, and complete
// then delivers the exact bytes. At no time is a file visible at the final key with other
// content.
func TestPluginKilledMidDelivery(t *testing.T) {
	t.Parallel()
	const total, chunk = 64 * mib, 4 * mib
	s := startServer(t, "fault", map[string]string{"CHUNK_SIZE_MB": "4"})
	data := harness.RandomBytes(total, 1)
	whole := harness.SHA256Hex(data)
	up := s.InitUpload(t, map[string]any{"filename": "kill/big.bin", "total_size": total})
	s.UploadParts(t, up, harness.PartData(data, chunk), 4)
	key := "kill/" + up.FileID + "_big.bin"
	final := filepath.Join(s.objectRoot(), filepath.FromSlash(key))
	watch := watchFinal(final, total, whole)

	// hang-put: the plugin takes 1 MiB and then holds the delivery in progress.
	s.fault(t, "hang-put", true)
	completed := s.CompleteAsync(up.FileID)
	if !harness.WaitFor(30*time.Second, func() bool {
		st := s.Status(t, up.FileID)
		return st.Status == "finalizing" && s.puts(t, key) == 1
	}) {
		t.Fatalf("the delivery did not start within 30 s: %+v", s.Status(t, up.FileID))
	}
	// The plugin cannot come back while crash-configure is on: /health must say so.
	s.fault(t, "crash-configure", true)
	killed := time.Now()
	pid := killPlugin(t, s)
	t.Logf("plugin %d killed mid-delivery", pid)

	select {
	case res := <-completed:
		if res.Err != nil {
			t.Fatalf("complete: %v", res.Err)
		}
		code := harness.ExpectErrorOneOf(t, res.R, map[string]int{"backend_unavailable": 503, "delivery_failed": 502})
		t.Logf("complete answered %s %v after the kill: %s", code, res.At.Sub(killed).Round(time.Millisecond), res.R)
	case <-time.After(30 * time.Second):
		t.Fatal("complete did not answer within 30 s of the plugin kill")
	}
	st := s.Status(t, up.FileID)
	if st.Status != "failed" || st.Phase != "failed" || strings.TrimSpace(harness.Str(st.FinalizationError)) == "" ||
		harness.Str(st.FinalPath) != "" || st.UploadedParts != up.TotalParts {
		t.Errorf("status after the kill = %+v, want failed with a finalization_error, no final_path, all parts uploaded", st)
	}
	t.Logf("finalization_error: %q", harness.Str(st.FinalizationError))
	if got := len(s.StagedFiles(t, up.FileID)); got != up.TotalParts {
		t.Errorf("%d files staged after the failed delivery, want the %d parts", got, up.TotalParts)
	}

	// The host keeps serving while the plugin is down.
	for range 3 {
		checkHealth(t, s.Health(t), http.StatusServiceUnavailable, "fault")
	}
	if r := s.Do(t, http.MethodGet, "/metrics", nil, nil); r.Status != http.StatusOK {
		t.Errorf("GET /metrics with the plugin down: %v", r)
	}
	other := s.InitUpload(t, map[string]any{"filename": "kill/other.bin", "total_size": 10})
	s.MustPutPart(t, other.FileID, 0, other.Parts[0].Token, []byte("0123456789"))
	r := s.Complete(t, up.FileID)
	harness.ExpectErrorOneOf(t, r, map[string]int{"backend_unavailable": 503, "delivery_failed": 502})
	if st := s.Status(t, up.FileID); st.Status != "failed" {
		t.Errorf("complete with the plugin down left status %q, want failed", st.Status)
	}

	// The plugin can start again: /health restarts it.
	s.fault(t, "crash-configure", false)
	s.fault(t, "hang-put", false)
	checkHealth(t, s.WaitHealth(t, http.StatusOK, 15*time.Second), http.StatusOK, "fault")
	if newPID := s.PluginPID(t); newPID == pid {
		t.Errorf("plugin pid %d unchanged after its kill", pid)
	}
	c := s.CompleteAndWait(t, up.FileID, time.Minute)
	watch.finish(t)
	if harness.Str(c.FinalPath) != final || harness.Str(c.ChecksumSHA256) != whole {
		t.Errorf("complete = %+v, want final_path %s, checksum %s", c, final, whole)
	}
	if sum, n := harness.FileSHA256(final); sum != whole || n != total {
		t.Errorf("delivered file: %d bytes, sha256 %s; want %d bytes, %s", n, sum, total, whole)
	}
	// The hung Put and the retry's: the complete refused while the plugin could not start
	// never reached one.
	if n := s.puts(t, key); n != 2 {
		t.Errorf("the plugin received %d Puts of %s, want 2", n, key)
	}
	objs := harness.RegularFiles(t, s.objectRoot())
	delete(objs, ".puts")
	delete(objs, key)
	if len(objs) != 0 {
		t.Errorf("the backend also holds %v", objs)
	}
	s.waitUnstaged(t, up.FileID)
}

// TestPluginCrashesAtStart makes every plugin start fail (crash-configure) after the
// running plugin was killed: /health answers 503 with a JSON body, quickly, as long as it
// lasts, and 200 once the plugin can start. A host whose plugin crashes at start refuses
// to start at all.
func TestPluginCrashesAtStart(t *testing.T) {
	t.Parallel()
	t.Run("running host", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, "fault", nil)
		checkHealth(t, s.Health(t), http.StatusOK, "fault")
		// A plugin killed once is started again by the next use: /health.
		first := killPlugin(t, s)
		calls := 0
		if !harness.WaitFor(10*time.Second, func() bool {
			calls++
			return s.Health(t).Status == http.StatusOK
		}) {
			t.Fatal("GET /health not 200 within 10 s of a plugin kill")
		}
		if calls > 2 {
			t.Errorf("GET /health answered 200 only at call %d after a plugin kill, want the first use to restart it", calls)
		}
		if pid := s.PluginPID(t); pid == first {
			t.Errorf("plugin pid %d unchanged after its kill", pid)
		}
		s.fault(t, "crash-configure", true)
		killPlugin(t, s)
		for i := range 4 {
			start := time.Now()
			r := s.Health(t)
			took := time.Since(start)
			checkHealth(t, r, http.StatusServiceUnavailable, "fault")
			if took > 10*time.Second {
				t.Errorf("GET /health %d took %v with a crashing plugin", i, took)
			}
			if i == 0 {
				t.Logf("GET /health with a crashing plugin (%v): %s", took.Round(time.Millisecond), r)
			}
		}
		// An upload can be created, but not delivered, meanwhile.
		up := s.InitUpload(t, map[string]any{"filename": "crash/a.bin", "total_size": 3})
		s.MustPutPart(t, up.FileID, 0, up.Parts[0].Token, []byte("abc"))
		harness.ExpectErrorOneOf(t, s.Complete(t, up.FileID), map[string]int{"backend_unavailable": 503, "delivery_failed": 502})

		s.fault(t, "crash-configure", false)
		start := time.Now()
		checkHealth(t, s.WaitHealth(t, http.StatusOK, 15*time.Second), http.StatusOK, "fault")
		t.Logf("healthy %v after the control file was removed", time.Since(start).Round(time.Millisecond))
		c := s.CompleteAndWait(t, up.FileID, 30*time.Second)
		if b, err := os.ReadFile(harness.Str(c.FinalPath)); err != nil || string(b) != "abc" {
			t.Errorf("delivered %q (%v), want abc", b, err)
		}
	})
	t.Run("refused start", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, "fault", map[string]string{"FAULT_MODE": "crash-configure"})
		p, err := s.Launch(t)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.Exited:
		case <-time.After(60 * time.Second):
			t.Fatal("the host still runs 60 s after start with a plugin that crashes on Configure")
		}
		log := harness.Tail(p.LogPath)
		if code := p.ExitCode(); code == 0 {
			t.Errorf("exit code %d, want non-zero", code)
		}
		if !strings.Contains(log, "storage backend") || !strings.Contains(log, "fault") {
			t.Errorf("stderr does not name the storage backend fault:\n%s", log)
		}
		t.Logf("exit code %d; stderr:\n%s", p.ExitCode(), log)
	})
}

// TestPluginHangs: a plugin that stops consuming a delivery is killed after
// PLUGIN_STALL_TIMEOUT, the upload fails and can be completed again; a plugin whose health
// check hangs makes /health answer 503 after PLUGIN_HEALTH_TIMEOUT, is not killed for it
// (it still answers its liveness check), and /health recovers.
func TestPluginHangs(t *testing.T) {
	t.Parallel()
	s := startServer(t, "fault", map[string]string{
		"PLUGIN_STALL_TIMEOUT":  "3s",
		"PLUGIN_HEALTH_TIMEOUT": "1s",
		"HEALTH_CACHE_TTL":      "0s",
		"CHUNK_SIZE_MB":         "4",
	})
	const total = 16 * mib
	data := harness.RandomBytes(total, 2)
	whole := harness.SHA256Hex(data)
	up := s.InitUpload(t, map[string]any{"filename": "hang/a.bin", "total_size": total})
	s.UploadParts(t, up, harness.PartData(data, 4*mib), 4)
	key := "hang/" + up.FileID + "_a.bin"
	final := filepath.Join(s.objectRoot(), filepath.FromSlash(key))

	t.Run("put", func(t *testing.T) {
		s.fault(t, "hang-put", true)
		pid := s.PluginPID(t)
		start := time.Now()
		r := s.Complete(t, up.FileID)
		took := time.Since(start)
		code := harness.ExpectErrorOneOf(t, r, map[string]int{"backend_unavailable": 503, "delivery_failed": 502})
		t.Logf("complete with a hung plugin answered %s after %v: %s", code, took.Round(time.Millisecond), r)
		if took < 3*time.Second || took > 10*time.Second {
			t.Errorf("complete gave up after %v, want 3 to 10 s (PLUGIN_STALL_TIMEOUT=3s)", took)
		}
		st := s.Status(t, up.FileID)
		if st.Status != "failed" || strings.TrimSpace(harness.Str(st.FinalizationError)) == "" {
			t.Errorf("status = %+v, want failed with a finalization_error", st)
		}
		if s.puts(t, key) != 1 {
			t.Errorf("the plugin received %d Puts, want 1", s.puts(t, key))
		}
		gone := harness.WaitGone(t, pid, 10*time.Second)
		t.Logf("the hung plugin %d was gone %v after complete answered", pid, gone.Round(time.Millisecond))
		checkHealth(t, s.WaitHealth(t, http.StatusOK, 15*time.Second), http.StatusOK, "fault")
		if _, err := os.Stat(final); err == nil {
			t.Errorf("%s exists after the stalled delivery", final)
		}
		s.fault(t, "hang-put", false)
		c := s.CompleteAndWait(t, up.FileID, time.Minute)
		if sum, n := harness.FileSHA256(harness.Str(c.FinalPath)); harness.Str(c.FinalPath) != final || sum != whole || n != total {
			t.Errorf("delivered %s: %d bytes, sha256 %s; want %s, %d bytes, %s", harness.Str(c.FinalPath), n, sum, final, total, whole)
		}
	})

	t.Run("health", func(t *testing.T) {
		s.fault(t, "hang-health", true)
		pid := s.PluginPID(t)
		for i := range 3 {
			start := time.Now()
			r := s.Health(t)
			took := time.Since(start)
			checkHealth(t, r, http.StatusServiceUnavailable, "fault")
			t.Logf("GET /health %d with a hung health check: %v, %s", i, took.Round(time.Millisecond), r)
			// Bounded by PLUGIN_HEALTH_TIMEOUT (1 s) and the probe it may have joined; it can
			// take less than 1 s when it joined a probe already under way.
			if took > 6*time.Second {
				t.Errorf("GET /health took %v, want at most 6 s (PLUGIN_HEALTH_TIMEOUT=1s)", took)
			}
			if pids := harness.PluginChildren(s.Cur().PID()); len(pids) != 1 || pids[0] != pid {
				t.Errorf("plugin processes %v after their health check hung, want the same one (%d)", pids, pid)
			}
		}
		s.fault(t, "hang-health", false)
		checkHealth(t, s.WaitHealth(t, http.StatusOK, 15*time.Second), http.StatusOK, "fault")
		if now := s.PluginPID(t); now != pid {
			t.Errorf("plugin %d replaced by %d", pid, now)
		}
	})
}
