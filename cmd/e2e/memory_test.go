package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// TestHostMemory uploads four 50 MiB parts, two at a time, and delivers the
// 200 MiB file, then checks that the host's peak resident memory stayed well
// under one part: the host streams parts to disk and to the plugin.
func TestHostMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 200 MiB; skipped with -short")
	}
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		const (
			chunk = 50 * mib
			parts = 4
			total = chunk * parts
			// The host idles at about 20 MiB. Holding one part in memory
			// would take it past 20+50 MiB, so 56 MiB catches any buffered
			// part while leaving room for the part-wise deliveries running
			// beside the uploads (1 MiB buffers each) and GC slack
			// (35-39 MiB measured with whole delivery, 44-48 part-wise).
			maxHWM   = 56 * mib
			parallel = 2
		)
		s := startServer(t, b, map[string]string{"CHUNK_SIZE_MB": "50"})
		baseline := procStatusKiB(t, s.PID(), "VmHWM")
		up := s.InitUpload(t, map[string]any{"filename": "big/memory.bin", "total_size": total})
		if up.TotalParts != parts || up.ChunkSize != chunk {
			t.Fatalf("init: total_parts %d, chunk_size %d; want %d and %d", up.TotalParts, up.ChunkSize, parts, chunk)
		}

		start := time.Now()
		sem := make(chan struct{}, parallel)
		var wg sync.WaitGroup
		for n := range parts {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				h := sha256.New()
				body := io.TeeReader(generator(uint64(n), chunk), h)
				req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/upload/%s/part/%d", s.URL(""), up.FileID, n), io.NopCloser(body))
				if err != nil {
					t.Error(err)
					return
				}
				req.ContentLength = chunk
				req.Header.Set("Authorization", "Bearer "+up.Parts[n].Token)
				req.Header.Set("Content-Type", "application/octet-stream")
				r, err := s.TrySend(req)
				if err != nil {
					t.Errorf("part %d: %v", n, err)
					return
				}
				if r.Status != http.StatusOK {
					t.Errorf("part %d: got %v, want 200", n, r)
					return
				}
				var p harness.PartResponse
				if err := json.Unmarshal(r.Body, &p); err != nil || p.ChecksumSHA256 != hex.EncodeToString(h.Sum(nil)) {
					t.Errorf("part %d: got %s, want checksum_sha256 %x", n, r.Body, h.Sum(nil))
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		uploaded := time.Since(start)
		hwmUpload := procStatusKiB(t, s.PID(), "VmHWM")

		start = time.Now()
		c := s.CompleteAndWait(t, up.FileID, 5*time.Minute)
		delivered := time.Since(start)

		want := sha256.New()
		for n := range parts {
			if _, err := io.Copy(want, generator(uint64(n), chunk)); err != nil {
				t.Fatal(err)
			}
		}
		wantSum := hex.EncodeToString(want.Sum(nil))
		if harness.Str(c.ChecksumSHA256) != wantSum {
			t.Errorf("complete checksum_sha256 = %s, want %s", harness.Str(c.ChecksumSHA256), wantSum)
		}
		rc, err := b.open(t, s, harness.Str(c.FinalPath))
		if err != nil {
			t.Fatalf("opening the delivered object: %v", err)
		}
		got := sha256.New()
		size, err := io.Copy(got, rc)
		rc.Close()
		if err != nil || size != total || hex.EncodeToString(got.Sum(nil)) != wantSum {
			t.Errorf("delivered object: %d bytes, sha256 %x, err %v; want %d bytes, sha256 %s", size, got.Sum(nil), err, total, wantSum)
		}

		hwm := procStatusKiB(t, s.PID(), "VmHWM")
		t.Logf("host VmHWM: %.1f MiB (%.1f MiB after start, %.1f MiB after the parts); upload of 4x50 MiB took %v, delivery %v",
			float64(hwm)/1024, float64(baseline)/1024, float64(hwmUpload)/1024, uploaded.Round(time.Millisecond), delivered.Round(time.Millisecond))
		for _, pid := range childPIDs(s.PID()) {
			if v, err := readProcStatusKiB(pid, "VmHWM"); err == nil {
				t.Logf("child %d (plugin) VmHWM: %.1f MiB (not counted)", pid, float64(v)/1024)
			}
		}
		if hwm*1024 >= maxHWM {
			t.Errorf("host VmHWM = %.1f MiB, want < %d MiB (parts are %d MiB; the host must stream)",
				float64(hwm)/1024, maxHWM/mib, chunk/mib)
		}
	})
}

// generator returns size deterministic pseudo-random bytes for seed, made
// on the fly.
func generator(seed uint64, size int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8(harness.Seed(seed)), size)
}

// procStatusKiB reads a "kB" field of /proc/<pid>/status.
func procStatusKiB(tb testing.TB, pid int, field string) int64 {
	tb.Helper()
	v, err := readProcStatusKiB(pid, field)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func readProcStatusKiB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// childPIDs lists the children of pid (over all its threads).
func childPIDs(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var pids []int
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				pids = append(pids, n)
			}
		}
	}
	return pids
}
