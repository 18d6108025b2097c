package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is a running host process.
type server struct {
	cmd  *exec.Cmd
	url  string
	key  string
	dir  string
	logf *os.File
}

const benchKey = "bench-api-key-0123456789"

// startServer starts the host with the given backend settings in dir.
func startServer(bin, dir string, extra map[string]string) (*server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	env := map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME"),
		"API_KEY": benchKey, "JWT_SECRET": "bench-jwt-secret-0123456789-0123456789",
		"PLUGIN_DIR": bin, "STORAGE_BACKEND": "local",
		"LOCAL_STORAGE_PATH": filepath.Join(dir, "uploads"), "TEMP_STORAGE_PATH": filepath.Join(dir, "staging"),
		"DATABASE_PATH": filepath.Join(dir, "uploads.db"), "SERVER_HOST": "127.0.0.1", "SERVER_PORT": strconv.Itoa(port),
		"CHUNK_SIZE_MB": "50", "COMPLETE_WAIT_SECONDS": "3600", "STAGING_RESERVE_MB": "0", "LOG_FORMAT": "json", "LOG_LEVEL": "warn",
	}
	for k, v := range extra {
		env[k] = v
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(bin, "chunked-uploader"))
	cmd.Dir = dir
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), key: benchKey, dir: dir, logf: logf}
	for i := 0; i < 300; i++ {
		if resp, err := http.Get(s.url + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop()
	log, _ := os.ReadFile(logf.Name())
	return nil, fmt.Errorf("server did not become healthy:\n%s", log)
}

func (s *server) stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
	}
	s.logf.Close()
}

// peakRSS returns VmHWM (bytes) of the host and of its plugin child.
func (s *server) peakRSS() (hostRSS, pluginRSS int64) {
	pid := s.cmd.Process.Pid
	hostRSS = vmHWM(pid)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			pluginRSS = max(pluginRSS, vmHWM(p))
		}
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

type initResp struct {
	FileID     string `json:"file_id"`
	TotalParts int    `json:"total_parts"`
	ChunkSize  int64  `json:"chunk_size"`
	Parts      []struct {
		Token string `json:"token"`
	} `json:"parts"`
}

func (s *server) do(method, path string, body io.Reader, size int64, hdr map[string]string, out any) error {
	req, err := http.NewRequest(method, s.url+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
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
