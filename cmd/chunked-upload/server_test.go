package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

const (
	testAPIKey    = "cli-test-api-key-0123456789abcdef"
	testJWTSecret = "cli-test-jwt-secret-0123456789abcdef-0123456789abcdef"
	mib           = 1 << 20
)

// server is a running host process with the local backend and 1 MiB chunks.
type server struct {
	base    string // http://127.0.0.1:port
	uploads string // LOCAL_STORAGE_PATH
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

// startServer starts a host in a fresh directory and waits until /health answers 200. It is
// stopped at cleanup, and its log shown if the test failed.
func startServer(t *testing.T) *server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		s, err := tryStart(t, t.TempDir())
		if err == nil {
			return s
		}
		if !strings.Contains(err.Error(), "address already in use") || attempt == 3 {
			t.Fatalf("starting the host: %v", err)
		}
	}
}

func tryStart(t *testing.T, dir string) (*server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &server{base: "http://127.0.0.1:" + strconv.Itoa(port), uploads: filepath.Join(dir, "uploads"),
		logPath: filepath.Join(dir, "host.log"), exited: make(chan struct{})}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(filepath.Join(binDir, "chunked-uploader"))
	s.cmd.Dir = dir
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir(),
		"API_KEY=" + testAPIKey, "JWT_SECRET=" + testJWTSecret, "PLUGIN_DIR=" + binDir,
		"STORAGE_BACKEND=local", "LOCAL_STORAGE_PATH=" + s.uploads,
		"TEMP_STORAGE_PATH=" + filepath.Join(dir, "staging"), "DATABASE_PATH=" + filepath.Join(dir, "uploads.db"),
		"SERVER_HOST=127.0.0.1", "SERVER_PORT=" + strconv.Itoa(port), "CHUNK_SIZE_MB=1", "LOG_FORMAT=json"}
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the plugin child goes with it
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	go func() {
		s.cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()
	if err := s.waitHealthy(30 * time.Second); err != nil {
		s.stop(t)
		return nil, fmt.Errorf("%v\nhost log:\n%s", err, s.log())
	}
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("host log:\n%s", s.log())
		}
	})
	return s, nil
}

func (s *server) waitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return errors.New("host exited before it was healthy")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("GET /health not 200 within %v", timeout)
}

// stop sends SIGTERM, then kills the process group after 10 s.
func (s *server) stop(t *testing.T) {
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("host did not exit within 10 s of SIGTERM; killing it")
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

func (s *server) log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > 32<<10 {
		b = b[len(b)-32<<10:]
	}
	return string(bytes.TrimSpace(b))
}
