package reliability

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

// healthBound is how long a GET /health may take in these tests at most: far above the
// PLUGIN_HEALTH_TIMEOUT they set (2 s), far below the minute a frozen plugin used to hold
// it. The figures measured are logged.
const healthBound = 15 * time.Second

// timedHealth sends GET /health with a client deadline of healthBound and returns the
// answer and how long it took; it fails the test if there is no answer in time.
func timedHealth(tb testing.TB, s *server) (harness.Response, time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), healthBound)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL("/health"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("GET /health gave no answer within %v: %v", healthBound, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET /health: reading the answer: %v", err)
	}
	return harness.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, time.Since(start)
}

// freeze stops the process pid with SIGSTOP; at cleanup it is killed, so that a host that
// never kills it does not hang the test's teardown.
func freeze(tb testing.TB, pid int) time.Time {
	tb.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		tb.Fatalf("SIGSTOP %d: %v", pid, err)
	}
	tb.Cleanup(func() { harness.KillPlugin(pid) })
	// SIGSTOP takes effect asynchronously: wait until the process is stopped (state T).
	for deadline := time.Now().Add(5 * time.Second); !plugintest.Stopped(pid); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("process %d not stopped 5 s after SIGSTOP", pid)
		}
	}
	return time.Now()
}

// watchFrozen polls /health while pid is frozen, until it is gone and /health answers 200
// again, and returns how long after frozen the process was gone and the /health latencies
// seen while it was frozen. Every /health must answer within healthBound, with 503 while
// the plugin is frozen or down.
func watchFrozen(tb testing.TB, s *server, pid int, frozen time.Time, backend string) (time.Duration, []time.Duration) {
	tb.Helper()
	var gone time.Duration
	var latencies []time.Duration
	saw503 := false
	deadline := frozen.Add(60 * time.Second)
	for {
		if gone == 0 && !harness.Alive(pid) {
			gone = time.Since(frozen)
		}
		r, took := timedHealth(tb, s)
		if gone == 0 {
			latencies = append(latencies, took)
			if len(latencies) == 1 && r.Status == http.StatusOK {
				// A probe the plugin answered just before it stopped (its answer was already
				// on the socket) may still say healthy; every later one must say 503.
				tb.Logf("first GET /health after SIGSTOP answered 200 in %v (a probe answered before the stop)", took)
			} else {
				checkHealth(tb, r, http.StatusServiceUnavailable, backend)
				saw503 = true
			}
		}
		if gone != 0 && r.Status == http.StatusOK {
			if !saw503 {
				tb.Fatalf("plugin %d was gone %v after SIGSTOP before any GET /health answered 503", pid, gone)
			}
			checkHealth(tb, r, http.StatusOK, backend)
			return gone, latencies
		}
		if time.Now().After(deadline) {
			tb.Fatalf("60 s after SIGSTOP: plugin %d alive %v, last /health %v", pid, harness.Alive(pid), r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func maxOf(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// TestFrozenPlugin stops the real plugin process with SIGSTOP, as a wedged or deadlocked
// process would behave: its gRPC server no longer answers at all. The host must keep
// answering /health within a bound (503 while the plugin is frozen or down), kill the
// plugin (PLUGIN_LIVENESS_TIMEOUT=2s), start a new one, and serve uploads with it. A
// delivery in progress when the plugin froze must fail as retryable (not stay
// "finalizing"), and a second complete must deliver the exact bytes.
func TestFrozenPlugin(t *testing.T) {
	t.Parallel()
	settings := map[string]string{
		"PLUGIN_LIVENESS_TIMEOUT": "2s",
		"PLUGIN_HEALTH_TIMEOUT":   "2s",
		"HEALTH_CACHE_TTL":        "0s", // no stale answer from before the freeze
		"CHUNK_SIZE_MB":           "4",
	}

	t.Run("idle local plugin", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, "local", settings)
		checkHealth(t, s.Health(t), http.StatusOK, "local")
		pid := s.PluginPID(t)
		frozen := freeze(t, pid)
		gone, latencies := watchFrozen(t, s, pid, frozen, "local")
		t.Logf("local plugin %d: killed %v after SIGSTOP; %d GET /health while frozen, slowest %v (all: %v)",
			pid, gone.Round(time.Millisecond), len(latencies), maxOf(latencies).Round(time.Millisecond), roundAll(latencies))
		if next := s.PluginPID(t); next == pid {
			t.Fatalf("plugin pid %d unchanged", pid)
		}
		data := harness.RandomBytes(6*mib, 11)
		up := s.InitUpload(t, map[string]any{"filename": "frozen/after.bin", "total_size": len(data)})
		s.UploadParts(t, up, harness.PartData(data, 4*mib), 2)
		c := s.CompleteAndWait(t, up.FileID, time.Minute)
		if sum, n := harness.FileSHA256(harness.Str(c.FinalPath)); sum != harness.SHA256Hex(data) || n != int64(len(data)) {
			t.Errorf("delivered after the restart: %d bytes, sha256 %s; want %d, %s", n, sum, len(data), harness.SHA256Hex(data))
		}
	})

	t.Run("delivery in progress", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, "fault", settings)
		const total = 16 * mib
		data := harness.RandomBytes(total, 12)
		whole := harness.SHA256Hex(data)
		up := s.InitUpload(t, map[string]any{"filename": "frozen/big.bin", "total_size": total})
		s.UploadParts(t, up, harness.PartData(data, 4*mib), 4)
		key := "frozen/" + up.FileID + "_big.bin"
		final := filepath.Join(s.objectRoot(), filepath.FromSlash(key))

		// slow-put: the plugin takes about 3 MiB/s, so the delivery is in progress for
		// seconds when the plugin freezes.
		s.fault(t, "slow-put", true)
		completed := s.CompleteAsync(up.FileID)
		if !harness.WaitFor(30*time.Second, func() bool {
			st := s.Status(t, up.FileID)
			return st.Status == "finalizing" && s.puts(t, key) == 1
		}) {
			t.Fatalf("the delivery did not start within 30 s: %+v", s.Status(t, up.FileID))
		}
		pid := s.PluginPID(t)
		frozen := freeze(t, pid)
		gone, latencies := watchFrozen(t, s, pid, frozen, "fault")
		t.Logf("fault plugin %d frozen mid-delivery: killed %v after SIGSTOP; %d GET /health while frozen, slowest %v (all: %v)",
			pid, gone.Round(time.Millisecond), len(latencies), maxOf(latencies).Round(time.Millisecond), roundAll(latencies))

		select {
		case res := <-completed:
			if res.Err != nil {
				t.Fatalf("complete: %v", res.Err)
			}
			if res.R.Status == http.StatusAccepted {
				t.Logf("complete answered 202 after %v", res.Took.Round(time.Millisecond))
			} else {
				code := harness.ExpectErrorOneOf(t, res.R, map[string]int{"backend_unavailable": 503, "delivery_failed": 502})
				t.Logf("complete answered %s %v after SIGSTOP: %s", code, res.At.Sub(frozen).Round(time.Millisecond), res.R)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("complete did not answer within 60 s of SIGSTOP")
		}
		var st harness.Status
		if !harness.WaitFor(30*time.Second, func() bool {
			st = s.Status(t, up.FileID)
			return st.Status != "finalizing"
		}) {
			t.Fatalf("the upload is still finalizing 30 s after its plugin was killed: %+v", st)
		}
		if st.Status != "failed" || strings.TrimSpace(harness.Str(st.FinalizationError)) == "" || st.UploadedParts != up.TotalParts {
			t.Fatalf("status after the frozen delivery = %+v, want failed (retryable) with a finalization_error and every part kept", st)
		}
		t.Logf("finalization_error: %q", harness.Str(st.FinalizationError))

		s.fault(t, "slow-put", false)
		c := s.CompleteAndWait(t, up.FileID, time.Minute)
		if harness.Str(c.FinalPath) != final || harness.Str(c.ChecksumSHA256) != whole {
			t.Errorf("complete = %+v, want final_path %s, checksum %s", c, final, whole)
		}
		if sum, n := harness.FileSHA256(final); sum != whole || n != total {
			t.Errorf("delivered file: %d bytes, sha256 %s; want %d bytes, %s", n, sum, total, whole)
		}
		if n := s.puts(t, key); n != 2 {
			t.Errorf("the plugin received %d Puts of %s, want 2 (the frozen one and the retry)", n, key)
		}
		s.waitUnstaged(t, up.FileID)
	})
}

func roundAll(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("[%s]", strings.Join(parts, " "))
}
