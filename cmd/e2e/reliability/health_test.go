package reliability

import (
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// probes counts the backend health probes the fault plugin received (FAULT_HEALTH_LOG must
// be set).
func (s *server) probes(tb testing.TB) int {
	tb.Helper()
	b, err := os.ReadFile(s.Env["FAULT_HEALTH_LOG"])
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// TestHealthProbesShared: anonymous GET /health calls do not each run a backend probe.
// 100 calls at once to a host that has not probed yet, with HEALTH_CACHE_TTL=1m, make
// exactly one probe (they share the one in flight or get its cached answer), and all
// answer 200.
func TestHealthProbesShared(t *testing.T) {
	t.Parallel()
	s := newServer(t, "fault", map[string]string{"HEALTH_CACHE_TTL": "1m", "FAULT_HEALTH_LOG": filepath.Join(t.TempDir(), "probes")})
	p, err := s.Launch(t)
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the listener, not for /health: no probe before the burst.
	if !harness.WaitFor(30*time.Second, func() bool {
		c, err := net.Dial("tcp", s.Addr())
		if err == nil {
			c.Close()
		}
		return err == nil || !p.Running()
	}) || !p.Running() {
		t.Fatalf("the host did not listen within 30 s:\n%s", harness.Tail(p.LogPath))
	}
	const calls = 100
	var wg sync.WaitGroup
	statuses := make(chan int, calls)
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.TryDo(http.MethodGet, "/health", nil, nil)
			if err != nil {
				t.Error(err)
				return
			}
			statuses <- r.Status
		}()
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for st := range statuses {
		if st == http.StatusOK {
			ok++
		}
	}
	n := s.probes(t)
	t.Logf("%d concurrent GET /health: %d answered 200, the backend was probed %d times", calls, ok, n)
	if ok != calls {
		t.Errorf("%d of %d GET /health answered 200", ok, calls)
	}
	if n != 1 {
		t.Errorf("%d concurrent GET /health made %d backend probes, want 1", calls, n)
	}
}

// TestSlowHealthProbeKeepsPlugin: a backend whose health probe never answers makes /health
// answer 503 within PLUGIN_HEALTH_TIMEOUT, but does not get the plugin killed: a delivery
// that makes progress meanwhile (slow-put, about 3 MiB/s for 16 MiB) completes, on the same
// plugin process.
func TestSlowHealthProbeKeepsPlugin(t *testing.T) {
	t.Parallel()
	s := startServer(t, "fault", map[string]string{
		"PLUGIN_HEALTH_TIMEOUT":   "1s",
		"PLUGIN_LIVENESS_TIMEOUT": "2s",
		"HEALTH_CACHE_TTL":        "0s",
		"CHUNK_SIZE_MB":           "4",
	})
	const total = 16 * mib
	data := harness.RandomBytes(total, 13)
	whole := harness.SHA256Hex(data)
	up := s.InitUpload(t, map[string]any{"filename": "slowhealth/a.bin", "total_size": total})
	s.UploadParts(t, up, harness.PartData(data, 4*mib), 4)
	key := "slowhealth/" + up.FileID + "_a.bin"
	pid := s.PluginPID(t)

	s.fault(t, "slow-put", true)
	s.fault(t, "hang-health", true)
	completed := s.CompleteAsync(up.FileID)
	if !harness.WaitFor(30*time.Second, func() bool { return s.puts(t, key) == 1 }) {
		t.Fatalf("the delivery did not start within 30 s: %+v", s.Status(t, up.FileID))
	}
	var latencies []time.Duration
	var res harness.TimedResponse
	func() {
		for {
			select {
			case res = <-completed:
				return
			default:
			}
			r, took := timedHealth(t, s)
			latencies = append(latencies, took)
			checkHealth(t, r, http.StatusServiceUnavailable, "fault")
			if len(latencies) > 60 {
				t.Fatalf("complete did not answer during %d GET /health", len(latencies))
			}
		}
	}()
	t.Logf("%d GET /health during the delivery, all 503, slowest %v (all: %v)", len(latencies), maxOf(latencies).Round(time.Millisecond), roundAll(latencies))
	if len(latencies) < 2 {
		t.Errorf("only %d GET /health during the delivery: the test did not overlap them", len(latencies))
	}
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if res.R.Status != http.StatusOK {
		t.Fatalf("complete while /health probes hung: %v, want 200", res.R)
	}
	c := harness.Decode[harness.CompleteResponse](t, res.R)
	if sum, n := harness.FileSHA256(harness.Str(c.FinalPath)); sum != whole || n != total {
		t.Errorf("delivered %d bytes, sha256 %s; want %d, %s", n, sum, total, whole)
	}
	if now := s.PluginPID(t); now != pid {
		t.Errorf("plugin %d was replaced by %d while its health probe hung", pid, now)
	}
	if n := s.puts(t, key); n != 1 {
		t.Errorf("the plugin received %d Puts, want 1", n)
	}
	s.fault(t, "hang-health", false)
	checkHealth(t, s.WaitHealth(t, http.StatusOK, 15*time.Second), http.StatusOK, "fault")
	if now := s.PluginPID(t); now != pid {
		t.Errorf("plugin %d was replaced by %d", pid, now)
	}
}
