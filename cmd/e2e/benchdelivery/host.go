package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/e2e/internal/lb"
	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

const (
	apiKey    = "benchdelivery-api-key-0123456789abcdef"
	jwtSecret = "benchdelivery-jwt-secret-0123456789abcdef-0123456789"
)

// host is a running chunked-uploader process (with its plugin child), in a directory of
// its own: staging, database and log.
type host struct {
	*harness.Process
	url     string
	dir     string
	staging string
	logPath string
}

// startHost starts the host in binDir with the plugins of pluginDir, data in dir, and
// settings env and then extra (added to the defaults below), and waits until /health
// answers 200.
func startHost(binDir, pluginDir, dir string, env, extra map[string]string) (*host, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ports, err := lb.FreePorts(1)
	if err != nil {
		return nil, err
	}
	h := &host{url: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), dir: dir, staging: filepath.Join(dir, "staging"),
		logPath: filepath.Join(dir, "host.log")}
	settings := map[string]string{
		"API_KEY": apiKey, "JWT_SECRET": jwtSecret, "PLUGIN_DIR": pluginDir,
		"TEMP_STORAGE_PATH": h.staging, "DATABASE_PATH": filepath.Join(dir, "uploads.db"),
		"SERVER_HOST": "127.0.0.1", "SERVER_PORT": strconv.Itoa(ports[0]),
		"CHUNK_SIZE_MB": strconv.Itoa(chunkMiB), "STAGING_RESERVE_MB": "0",
		"LOG_FORMAT": "json", "LOG_LEVEL": "info", "GOTRACEBACK": "all",
	}
	for _, m := range []map[string]string{env, extra} {
		for k, v := range m {
			settings[k] = v
		}
	}
	// A process group of its own, so that stop can take the plugin down with it if need be.
	if h.Process, err = harness.StartProcess(filepath.Join(binDir, harness.HostBinary), nil, dir, settings, h.logPath, h.logPath); err != nil {
		return nil, fmt.Errorf("start host: %w", err)
	}
	if err := harness.WaitHealthy(h.url, h.Exited, time.Minute); err != nil {
		h.stop()
		return nil, fmt.Errorf("host: %v:\n%s", err, h.logTail())
	}
	return h, nil
}

// stop sends SIGTERM to the host (which stops its plugin), and kills the whole process
// group if it has not exited after a minute.
func (h *host) stop() {
	if h == nil || h.Process == nil {
		return
	}
	h.Stop(time.Minute)
}

func (h *host) logTail() string {
	b, _ := os.ReadFile(h.logPath)
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	return string(b)
}

// procStats are a process's peak RSS (VmHWM) and CPU time (user + system) so far.
type procStats struct {
	PeakRSS int64   `json:"peak_rss_bytes"`
	CPU     float64 `json:"cpu_seconds"`
}

// stats returns those of the host and of its plugin (the child process with the most CPU
// time, should the plugin have been restarted). Call it before stop.
func (h *host) stats() (hostStats, pluginStats procStats) {
	pid := h.PID()
	hostStats = readProcStats(pid)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(p); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			if s := readProcStats(p); s.CPU >= pluginStats.CPU {
				pluginStats = s
			}
		}
	}
	return hostStats, pluginStats
}

// statFields returns the fields of /proc/pid/stat after "pid (comm)": state, ppid, ...
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

func readProcStats(pid int) procStats {
	var s procStats
	if f := statFields(pid); len(f) > 12 {
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		s.CPU = float64(u+st) / 100 // USER_HZ
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			if f := strings.Fields(line); len(f) > 1 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				s.PeakRSS = kb << 10
			}
		}
	}
	return s
}

// httpClient carries the benchmark's requests: enough idle connections for the parts in
// flight, no timeout of its own (complete may wait for minutes).
var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}}

// call makes a request with body (nil: none) of size bytes and decodes a JSON answer into
// out (if not nil). It returns the status code; a status other than one of want is an error
// that quotes the answer.
func (h *host) call(ctx context.Context, method, path string, hdr map[string]string, body io.Reader, size int64, out any, want ...int) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, h.url+path, body)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	ok := false
	for _, w := range want {
		ok = ok || resp.StatusCode == w
	}
	if !ok {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w in %q", method, path, err, data)
		}
	}
	return resp.StatusCode, nil
}

var keyHeader = map[string]string{"X-API-Key": apiKey}

type initAnswer = harness.InitResponse

func (h *host) init(ctx context.Context, name string, size int64, sha string) (*initAnswer, error) {
	req := map[string]any{"filename": name, "total_size": size}
	if sha != "" {
		req["checksum_sha256"] = sha
	}
	body, _ := json.Marshal(req)
	var a initAnswer
	hdr := map[string]string{"X-API-Key": apiKey, "Content-Type": "application/json"}
	if _, err := h.call(ctx, http.MethodPost, "/upload/init", hdr, bytes.NewReader(body), int64(len(body)), &a, http.StatusOK); err != nil {
		return nil, err
	}
	if len(a.Parts) != a.TotalParts || a.ChunkSize != chunkMiB<<20 {
		return nil, fmt.Errorf("init: %d parts of %d bytes for %d parts, want parts of %d", len(a.Parts), a.ChunkSize, a.TotalParts, chunkMiB<<20)
	}
	return &a, nil
}

// status is the answer to GET /upload/{id}/status.
type status = harness.Status

func (h *host) status(ctx context.Context, id string) (*status, error) {
	var s status
	_, err := h.call(ctx, http.MethodGet, "/upload/"+id+"/status?include_parts=false", keyHeader, nil, 0, &s, http.StatusOK)
	return &s, err
}

func (h *host) cancel(ctx context.Context, id string) error {
	_, err := h.call(ctx, http.MethodDelete, "/upload/"+id, keyHeader, nil, 0, nil, http.StatusOK)
	return err
}

// dirBytes is the size of the regular files under dir, as the host's staging_bytes gauge
// counts them (0 for a missing dir).
func dirBytes(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, e os.DirEntry, err error) error {
		if err != nil {
			return nil // a part removed during the walk, or staging not made yet
		}
		if e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}
