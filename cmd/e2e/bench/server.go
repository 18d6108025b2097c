package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// server is a running host process.
type server struct {
	*harness.Process
	url string
	key string
	dir string
	// backendDir is the local backend's LOCAL_STORAGE_PATH.
	backendDir string
	// client sends the requests; nil: benchClient.
	client *http.Client
}

// via returns a copy of s whose requests go through c.
func (s *server) via(c *http.Client) *server {
	v := *s
	v.client = c
	return &v
}

const benchKey = "bench-api-key-0123456789"

// startServer starts the host with the given backend settings in dir.
func startServer(bin, dir string, extra map[string]string) (*server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	env := map[string]string{
		"API_KEY": benchKey, "JWT_SECRET": "bench-jwt-secret-0123456789-0123456789",
		"PLUGIN_DIR": bin, "STORAGE_BACKEND": "local",
		"LOCAL_STORAGE_PATH": filepath.Join(dir, "uploads"), "TEMP_STORAGE_PATH": filepath.Join(dir, "staging"),
		"DATABASE_PATH": filepath.Join(dir, "uploads.db"), "SERVER_HOST": "127.0.0.1", "SERVER_PORT": strconv.Itoa(port),
		"CHUNK_SIZE_MB": "50", "COMPLETE_WAIT_SECONDS": "3600", "STAGING_RESERVE_MB": "0", "LOG_FORMAT": "json", "LOG_LEVEL": "warn",
	}
	for k, v := range extra {
		env[k] = v
	}
	logPath := filepath.Join(dir, "server.log")
	p, err := harness.StartProcess(filepath.Join(bin, harness.HostBinary), nil, dir, env, logPath, logPath)
	if err != nil {
		return nil, err
	}
	s := &server{Process: p, url: p.Base, key: benchKey, dir: dir, backendDir: env["LOCAL_STORAGE_PATH"]}
	if err := harness.WaitHealthy(s.url, p.Exited, 30*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("server did not become healthy: %v:\n%s", err, p.Stdout())
	}
	return s, nil
}

// stop sends SIGTERM and kills the host's process group (with its plugin) after 20 s.
func (s *server) stop() {
	if s == nil || s.Process == nil {
		return
	}
	s.Stop(20 * time.Second)
}

// peakRSS returns VmHWM (bytes) of the host and of its plugin child.
func (s *server) peakRSS() (hostRSS, pluginRSS int64) {
	pid := s.PID()
	hostRSS = vmHWM(pid)
	children, _ := harness.ChildPIDs(pid)
	for _, p := range children {
		pluginRSS = max(pluginRSS, vmHWM(p))
	}
	return hostRSS, pluginRSS
}

func vmHWM(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// initResp is the answer to POST /upload/init.
type initResp = harness.InitResponse

func (s *server) do(method, path string, body io.Reader, size int64, hdr map[string]string, out any) error {
	return request(s.client, s.url, method, path, body, size, hdr, out)
}

// benchClient sends requests where none other is set: like http.DefaultClient, but a
// request that hangs (a stuck server) fails after 10 minutes instead of stopping the bench.
var benchClient = &http.Client{Timeout: 10 * time.Minute}

// request sends method path to base through c (benchClient when nil) with body (size
// bytes; nil for none) and hdr, and decodes a 200's JSON into out, if not nil; any other
// status is an error that quotes the answer.
func request(c *http.Client, base, method, path string, body io.Reader, size int64, hdr map[string]string, out any) error {
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if c == nil {
		c = benchClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (s *server) init(name string, size int64) (*initResp, error) {
	var r initResp
	body := fmt.Sprintf(`{"filename":%q,"total_size":%d}`, name, size)
	err := s.do("POST", "/upload/init", strings.NewReader(body), int64(len(body)),
		map[string]string{"X-API-Key": s.key, "Content-Type": "application/json"}, &r)
	return &r, err
}

func (s *server) put(up *initResp, n int, data []byte) error {
	return s.do("PUT", fmt.Sprintf("/upload/%s/part/%d", up.FileID, n), bytes.NewReader(data), int64(len(data)),
		map[string]string{"Authorization": "Bearer " + up.Parts[n].Token}, nil)
}

// putFile sends the file at path as part n. An *os.File body lets net/http send it with
// sendfile, as a client uploading a file from disk would, and keeps the client's CPU
// (which shares the machine with the host) small.
func (s *server) putFile(up *initResp, n int, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return s.do("PUT", fmt.Sprintf("/upload/%s/part/%d", up.FileID, n), f, st.Size(),
		map[string]string{"Authorization": "Bearer " + up.Parts[n].Token}, nil)
}

func (s *server) complete(id string) (string, error) {
	var r struct {
		FinalPath string `json:"final_path"`
	}
	err := s.do("POST", "/upload/"+id+"/complete", nil, 0, map[string]string{"X-API-Key": s.key}, &r)
	return r.FinalPath, err
}
