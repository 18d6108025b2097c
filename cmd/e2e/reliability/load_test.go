package reliability

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// loadReport is what TestLoad writes to $RELIABILITY_REPORT.
type loadReport struct {
	Uploads           int                `json:"uploads"`
	PartsPerUpload    int                `json:"parts_per_upload"`
	PartBytes         int                `json:"part_bytes"`
	Completed         int                `json:"uploads_completed"`
	Errors            int                `json:"errors"`
	DurationSeconds   float64            `json:"duration_seconds"`
	UploadsPerSecond  float64            `json:"uploads_per_second"`
	MiBPerSecond      float64            `json:"mib_per_second"`
	PartLatencyMS     map[string]float64 `json:"part_latency_ms"`
	CompleteLatencyMS map[string]float64 `json:"complete_latency_ms"`
	PartsRejected     float64            `json:"parts_rejected_total"`
	CPUs              int                `json:"cpus"`
}

// TestLoad runs 50 uploads of 4 parts of 1 MiB at once, each sending its parts in
// parallel and completing: every request must succeed (no 5xx, no busy answer), every
// file must arrive whole, and all of it within 2 minutes. It reports uploads per second
// and the part latency percentiles, and writes them to $RELIABILITY_REPORT if set.
//
// It does not run in parallel with the other tests, so that its figures mean something.
func TestLoad(t *testing.T) {
	const (
		uploads = 50
		parts   = 4
		chunk   = mib
		bound   = 2 * time.Minute
	)
	// All 200 parts are sent at once: the budget of part writes in flight (default 64,
	// answered 429 beyond) is raised so that the load is measured, not the backpressure.
	s := startServer(t, "local", map[string]string{"CHUNK_SIZE_MB": "1", "MAX_PARTS_IN_FLIGHT": "256"})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: uploads * parts, DisableCompression: true}}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()

	var mu sync.Mutex
	var errs []string
	var partLat, completeLat []time.Duration
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(errs) < 20 {
			errs = append(errs, fmt.Sprintf(format, args...))
		} else {
			errs = append(errs, "")
		}
	}
	send := func(method, path string, body []byte, hdr map[string]string) (harness.Response, time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, method, s.URL(path), bytes.NewReader(body))
		if err != nil {
			return harness.Response{}, 0, err
		}
		if body == nil {
			req.Body = nil
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return harness.Response{}, 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return harness.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, time.Since(start), err
	}
	apiHdr := map[string]string{"X-API-Key": harness.APIKey, "Content-Type": "application/json"}

	// The data is made before the clock starts, so that the client's work does not count.
	data := make([][][]byte, uploads)
	sums := make([]string, uploads)
	for u := range uploads {
		whole := sha256.New()
		data[u] = make([][]byte, parts)
		for n := range parts {
			data[u][n] = harness.RandomBytes(chunk, uint64(1000*u+n))
			whole.Write(data[u][n])
		}
		sums[u] = hex.EncodeToString(whole.Sum(nil))
	}
	type delivered struct{ path, sum string }
	results := make([]delivered, uploads)
	start := time.Now()
	var wg sync.WaitGroup
	for u := range uploads {
		wg.Go(func() {
			body := fmt.Appendf(nil, `{"filename": "load/%03d.bin", "total_size": %d}`, u, parts*chunk)
			r, _, err := send(http.MethodPost, "/upload/init", body, apiHdr)
			if err != nil || r.Status != http.StatusOK {
				fail("upload %d: init: %v %v", u, r, err)
				return
			}
			var up harness.InitResponse
			if err := json.Unmarshal(r.Body, &up); err != nil || len(up.Parts) != parts {
				fail("upload %d: init answer %v", u, r)
				return
			}
			var pw sync.WaitGroup
			ok := true
			for n := range parts {
				pw.Go(func() {
					r, took, err := send(http.MethodPut, fmt.Sprintf("/upload/%s/part/%d", up.FileID, n), data[u][n], harness.PartHeaders(up.Parts[n].Token))
					if err != nil || r.Status != http.StatusOK {
						fail("upload %d part %d: %v %v", u, n, r, err)
						mu.Lock()
						ok = false
						mu.Unlock()
						return
					}
					mu.Lock()
					partLat = append(partLat, took)
					mu.Unlock()
				})
			}
			pw.Wait()
			if !ok {
				return
			}
			r, took, err := send(http.MethodPost, "/upload/"+up.FileID+"/complete", nil, apiHdr)
			if err != nil || (r.Status != http.StatusOK && r.Status != http.StatusAccepted) {
				fail("upload %d: complete: %v %v", u, r, err)
				return
			}
			for r.Status == http.StatusAccepted && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
				r, _, err = send(http.MethodPost, "/upload/"+up.FileID+"/complete", nil, apiHdr)
				if err != nil || (r.Status != http.StatusOK && r.Status != http.StatusAccepted) {
					fail("upload %d: complete again: %v %v", u, r, err)
					return
				}
			}
			mu.Lock()
			completeLat = append(completeLat, took)
			mu.Unlock()
			var c harness.CompleteResponse
			if err := json.Unmarshal(r.Body, &c); err != nil || c.Status != "complete" {
				fail("upload %d: complete answer %v", u, r)
				return
			}
			results[u] = delivered{harness.Str(c.FinalPath), sums[u]}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		t.Errorf("the load did not finish within %v", bound)
	}
	for _, e := range errs {
		if e != "" {
			t.Error(e)
		}
	}
	completed := 0
	for u, d := range results {
		if d.path == "" {
			continue
		}
		if sum, _ := harness.FileSHA256(d.path); sum != d.sum {
			t.Errorf("upload %d: delivered sha256 %s, want %s", u, sum, d.sum)
			continue
		}
		completed++
	}
	rejected := metricSum(t, s, "chunked_uploader_parts_rejected_total")
	if rejected != 0 {
		t.Errorf("/metrics: %v parts rejected under load, want 0", rejected)
	}
	rep := loadReport{
		Uploads: uploads, PartsPerUpload: parts, PartBytes: chunk,
		Completed: completed, Errors: len(errs),
		DurationSeconds:   elapsed.Seconds(),
		UploadsPerSecond:  float64(completed) / elapsed.Seconds(),
		MiBPerSecond:      float64(completed*parts*chunk) / mib / elapsed.Seconds(),
		PartLatencyMS:     percentiles(partLat),
		CompleteLatencyMS: percentiles(completeLat),
		PartsRejected:     rejected,
		CPUs:              runtime.NumCPU(),
	}
	t.Logf("%d/%d uploads of %d x %d MiB complete in %v: %.1f uploads/s, %.1f MiB/s; part latency ms %v; complete latency ms %v; errors %d",
		completed, uploads, parts, chunk/mib, elapsed.Round(time.Millisecond), rep.UploadsPerSecond, rep.MiBPerSecond,
		rep.PartLatencyMS, rep.CompleteLatencyMS, len(errs))
	if completed != uploads {
		t.Errorf("%d of %d uploads completed", completed, uploads)
	}
	if path := os.Getenv("RELIABILITY_REPORT"); path != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Errorf("writing RELIABILITY_REPORT: %v", err)
		} else {
			t.Logf("figures written to %s", path)
		}
	}
}

// percentiles returns p50, p90, p99 and max of d in milliseconds.
func percentiles(d []time.Duration) map[string]float64 {
	if len(d) == 0 {
		return nil
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(p float64) float64 {
		i := int(p*float64(len(s))+0.999999) - 1 // nearest rank
		i = max(0, min(i, len(s)-1))
		return float64(s[i].Microseconds()) / 1000
	}
	return map[string]float64{"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": at(1)}
}

// metricSum adds up every sample of a metric family in GET /metrics.
func metricSum(tb testing.TB, s *server, name string) float64 {
	tb.Helper()
	r := s.Do(tb, http.MethodGet, "/metrics", nil, nil)
	if r.Status != http.StatusOK {
		tb.Fatalf("GET /metrics: %v", r)
	}
	return metricSumIn(r.Body, name)
}

func metricSumIn(body []byte, name string) float64 {
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}
