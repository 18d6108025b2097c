package opstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
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
	"testing"
	"time"
)

// proc is a started host process (or a script that execs the host).
type proc struct {
	cmd        *exec.Cmd
	base       string // http://127.0.0.1:port
	stdoutPath string
	stderrPath string
	exited     chan struct{} // closed when the process has exited
	waitErr    error         // valid after exited is closed
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// hostEnv is the configuration of a host whose data lives in dir, listening on a free port:
// secrets, staging and database in dir, CHUNK_SIZE_MB=1, JSON logs.
func hostEnv(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	return map[string]string{
		"API_KEY":            testAPIKey,
		"JWT_SECRET":         testJWTSecret,
		"LOCAL_STORAGE_PATH": filepath.Join(dir, "uploads"),
		"TEMP_STORAGE_PATH":  filepath.Join(dir, "staging"),
		"DATABASE_PATH":      filepath.Join(dir, "uploads.db"),
		"SERVER_HOST":        "127.0.0.1",
		"SERVER_PORT":        strconv.Itoa(freePort(tb)),
		"CHUNK_SIZE_MB":      "1",
		"LOG_FORMAT":         "json",
	}
}

// start runs exe args in dir with only PATH, HOME, TMPDIR and env in its environment (nothing
// leaks in from the test's environment), in its own process group, with stdout and stderr
// in files in logDir. It is stopped at cleanup; its output is logged if the test failed.
func start(tb testing.TB, exe string, args []string, dir, logDir string, env map[string]string) *proc {
	tb.Helper()
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	if port := env["SERVER_PORT"]; port != "" {
		p.base = "http://127.0.0.1:" + port
	}
	var err error
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	p.stdoutPath = filepath.Join(logDir, "stdout-"+stamp+".log")
	p.stderrPath = filepath.Join(logDir, "stderr-"+stamp+".log")
	stdout, err := os.Create(p.stdoutPath)
	if err != nil {
		tb.Fatal(err)
	}
	stderr, err := os.Create(p.stderrPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", exe, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		stdout.Close()
		stderr.Close()
		close(p.exited)
	}()
	tb.Cleanup(func() {
		p.stop(tb)
		if tb.Failed() {
			tb.Logf("output of %s %v:\n--- stdout\n%s\n--- stderr\n%s", exe, args, p.stdout(), p.stderr())
		}
	})
	return p
}

func readTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	const max = 32 << 10
	if len(b) > max {
		b = append([]byte("...\n"), b[len(b)-max:]...)
	}
	return string(bytes.TrimSpace(b))
}

func (p *proc) stdout() string { return readTail(p.stdoutPath) }
func (p *proc) stderr() string { return readTail(p.stderrPath) }
func (p *proc) pid() int       { return p.cmd.Process.Pid }

// waitHealthy waits until GET /health answers 200.
func (p *proc) waitHealthy(tb testing.TB) {
	tb.Helper()
	const timeout = 30 * time.Second
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			tb.Fatalf("the host exited before it was healthy: %v\nstderr:\n%s", p.waitErr, p.stderr())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		cancel()
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("GET /health not 200 within %v (last: %s)", timeout, last)
}

// waitExit waits up to timeout for the process to exit by itself and returns its exit code.
func (p *proc) waitExit(tb testing.TB, timeout time.Duration) int {
	tb.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		tb.Fatalf("the process did not exit within %v\nstderr:\n%s", timeout, p.stderr())
	}
	var ee *exec.ExitError
	switch {
	case p.waitErr == nil:
		return 0
	case errors.As(p.waitErr, &ee):
		return ee.ExitCode()
	}
	tb.Fatalf("wait: %v", p.waitErr)
	return -1
}

// stop sends SIGTERM and waits up to 45 s (the host drains for up to 30 s), then kills the
// process group.
func (p *proc) stop(tb testing.TB) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(45 * time.Second):
		tb.Errorf("pid %d did not exit within 45 s of SIGTERM; killing its process group", p.pid())
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.exited
	}
}

// call sends one request and decodes a JSON answer into v (when v is not nil); it fails the
// test unless the status is want.
func call(tb testing.TB, method, url string, hdr map[string]string, body io.Reader, want int, v any) {
	tb.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		tb.Fatal(err)
	}
	for k, val := range hdr {
		req.Header.Set(k, val)
	}
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	if resp.StatusCode != want {
		tb.Fatalf("%s %s: got %d %s, want %d", method, url, resp.StatusCode, bytes.TrimSpace(b), want)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			tb.Fatalf("%s %s: answer is not the expected JSON: %v: %s", method, url, err, b)
		}
	}
}

type completed struct {
	FileID         string `json:"file_id"`
	Status         string `json:"status"`
	FinalPath      string `json:"final_path"`
	StorageBackend string `json:"storage_backend"`
	ChecksumSHA256 string `json:"checksum_sha256"`
	TotalSize      int64  `json:"total_size"`
}

// upload sends data as filename through init, one PUT per part and complete, waits for the
// delivery if complete answered 202, and returns the final state.
func upload(tb testing.TB, base, filename string, data []byte) completed {
	tb.Helper()
	apiKey := map[string]string{"X-API-Key": testAPIKey, "Content-Type": "application/json"}
	initBody, _ := json.Marshal(map[string]any{"filename": filename, "total_size": len(data)})
	var init struct {
		FileID     string `json:"file_id"`
		TotalParts int    `json:"total_parts"`
		ChunkSize  int    `json:"chunk_size"`
		Parts      []struct {
			Part  int    `json:"part"`
			Token string `json:"token"`
		} `json:"parts"`
	}
	call(tb, http.MethodPost, base+"/upload/init", apiKey, bytes.NewReader(initBody), http.StatusOK, &init)
	if init.ChunkSize <= 0 || len(init.Parts) != init.TotalParts {
		tb.Fatalf("init answered %+v", init)
	}
	for _, p := range init.Parts {
		lo := p.Part * init.ChunkSize
		hi := min(lo+init.ChunkSize, len(data))
		call(tb, http.MethodPut, fmt.Sprintf("%s/upload/%s/part/%d", base, init.FileID, p.Part),
			map[string]string{"Authorization": "Bearer " + p.Token, "Content-Type": "application/octet-stream"},
			bytes.NewReader(data[lo:hi]), http.StatusOK, nil)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/upload/"+init.FileID+"/complete", nil)
	req.Header.Set("X-API-Key", testAPIKey)
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var c completed
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusAccepted: // still delivering: poll the status
		deadline := time.Now().Add(2 * time.Minute)
		for c.Status != "complete" {
			if time.Now().After(deadline) || c.Status == "failed" {
				tb.Fatalf("delivery of %s did not complete: %+v", init.FileID, c)
			}
			time.Sleep(200 * time.Millisecond)
			call(tb, http.MethodGet, base+"/upload/"+init.FileID+"/status?include_parts=false", apiKey, nil, http.StatusOK, &c)
		}
		return c
	default:
		tb.Fatalf("POST complete: got %d %s", resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		tb.Fatalf("complete: %v: %s", err, b)
	}
	if c.Status != "complete" {
		tb.Fatalf("complete answered %s", b)
	}
	if sum := sha256.Sum256(data); c.ChecksumSHA256 != "" && c.ChecksumSHA256 != hex.EncodeToString(sum[:]) {
		tb.Errorf("complete: checksum_sha256 %s, want %x", c.ChecksumSHA256, sum)
	}
	return c
}

// children returns the pids of the processes whose parent is pid.
func children(tb testing.TB, pid int) []int {
	tb.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		tb.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
		f := strings.Fields(rest)
		if len(f) >= 2 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// environ returns the environment of process pid.
func environ(tb testing.TB, pid int) []string {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}
