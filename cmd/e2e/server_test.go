package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
	testAPIKey    = "e2e-api-key-0123456789abcdef"
	testJWTSecret = "e2e-jwt-secret-0123456789abcdef-0123456789abcdef"
	mib           = 1 << 20
)

// backend describes what is specific to one storage backend: the environment
// that selects and configures it, and how to reach a delivered object. Every
// test that delivers files runs once per entry of backends, with the same
// assertions.
type backend struct {
	name string
	// env returns the backend's variables for a host whose data lives in dir.
	env func(tb testing.TB, dir string) map[string]string
	// open opens the delivered object named by final_path.
	open func(tb testing.TB, s *server, finalPath string) (io.ReadCloser, error)
	// checkFinalPath reports whether final_path names key (such as
	// "videos/2024/<id>_clip.bin") under the backend's root.
	checkFinalPath func(tb testing.TB, s *server, finalPath, key string)
	// objects lists what the backend holds under the host's root (key →
	// size): delivered objects, and also temporaries and partial objects
	// (hidden SMB temporary files; S3 multipart uploads in progress as
	// key + s3MultipartSuffix).
	objects func(tb testing.TB, s *server) map[string]int64
}

var localBackend = backend{
	name: "local",
	env: func(tb testing.TB, dir string) map[string]string {
		return map[string]string{
			"STORAGE_BACKEND":    "local",
			"LOCAL_STORAGE_PATH": filepath.Join(dir, "uploads"),
		}
	},
	open: func(tb testing.TB, s *server, finalPath string) (io.ReadCloser, error) {
		return os.Open(finalPath)
	},
	checkFinalPath: func(tb testing.TB, s *server, finalPath, key string) {
		tb.Helper()
		want := filepath.Join(s.env["LOCAL_STORAGE_PATH"], filepath.FromSlash(key))
		if finalPath != want {
			tb.Errorf("final_path = %q, want the absolute path %q", finalPath, want)
		}
	},
	objects: func(tb testing.TB, s *server) map[string]int64 {
		tb.Helper()
		return regularFiles(tb, s.env["LOCAL_STORAGE_PATH"])
	},
}

// backends are the storage backends the delivery tests run against: the s3
// and smb entries use the shared test services (remote_test.go).
var backends = []backend{localBackend, s3SharedBackend, smbSharedBackend}

// forEachBackend runs f as a parallel subtest per backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f(t, b)
		})
	}
}

// server is one running host process.
type server struct {
	base    string // http://127.0.0.1:port
	addr    string // 127.0.0.1:port
	dir     string // working directory and data root
	env     map[string]string
	backend backend
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed when the process has exited
	waitErr error         // valid after exited is closed
	client  *http.Client
}

// staging is the host's TEMP_STORAGE_PATH.
func (s *server) staging() string { return s.env["TEMP_STORAGE_PATH"] }

// pid is the host's process id.
func (s *server) pid() int { return s.cmd.Process.Pid }

// startServer starts a host with the given backend and extra environment
// (which overrides the defaults) and waits until GET /health answers 200. The
// host is stopped at cleanup; its log is printed if the test failed.
func startServer(tb testing.TB, b backend, overrides map[string]string) *server {
	tb.Helper()
	dir := tb.TempDir()
	for attempt := 1; ; attempt++ {
		s, err := tryStart(tb, dir, b, overrides)
		if err == nil {
			return s
		}
		if errors.Is(err, errAddrInUse) && attempt < 3 {
			tb.Logf("port taken, retrying: %v", err)
			continue
		}
		tb.Fatalf("starting the host: %v", err)
	}
}

var errAddrInUse = errors.New("address already in use")

func tryStart(tb testing.TB, dir string, b backend, overrides map[string]string) (*server, error) {
	tb.Helper()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	env := map[string]string{
		"API_KEY":           testAPIKey,
		"JWT_SECRET":        testJWTSecret,
		"PLUGIN_DIR":        binDir,
		"TEMP_STORAGE_PATH": filepath.Join(dir, "staging"),
		"DATABASE_PATH":     filepath.Join(dir, "uploads.db"),
		"SERVER_HOST":       "127.0.0.1",
		"SERVER_PORT":       strconv.Itoa(port),
		"CHUNK_SIZE_MB":     "1",
		"LOG_FORMAT":        "json",
	}
	for k, v := range b.env(tb, dir) {
		env[k] = v
	}
	for k, v := range overrides {
		env[k] = v
	}
	for _, k := range []string{"TEMP_STORAGE_PATH", "LOCAL_STORAGE_PATH"} {
		if p := env[k]; p != "" {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return nil, err
			}
		}
	}

	logPath := filepath.Join(dir, fmt.Sprintf("host-%d.log", port))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(binDir, hostBinary))
	cmd.Dir = dir
	// A minimal environment: nothing (API_KEY, JWT_SECRET, S3_*, ...) leaks in
	// from the caller's environment.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Its own process group, so that the plugin child can be killed with it
	// if the host does not stop on SIGTERM.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	s := &server{
		base:    "http://127.0.0.1:" + strconv.Itoa(port),
		addr:    "127.0.0.1:" + strconv.Itoa(port),
		dir:     dir,
		env:     env,
		backend: b,
		cmd:     cmd,
		logPath: logPath,
		exited:  make(chan struct{}),
		client:  &http.Client{Timeout: 5 * time.Minute},
	}
	go func() {
		s.waitErr = cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()

	if err := s.waitHealthy(30 * time.Second); err != nil {
		s.stop(tb)
		log := s.log()
		if strings.Contains(log, "address already in use") {
			return nil, fmt.Errorf("%w: %v", errAddrInUse, err)
		}
		return nil, fmt.Errorf("%v\nhost log:\n%s", err, log)
	}
	tb.Cleanup(func() {
		s.stop(tb)
		if tb.Failed() {
			tb.Logf("host log (%s):\n%s", s.logPath, s.log())
		}
	})
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *server) waitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("host exited before it was healthy: %v", s.waitErr)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		cancel()
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("GET /health not 200 within %v (last: %s)", timeout, last)
}

// stop sends SIGTERM, waits up to 10 s, then kills the process group.
func (s *server) stop(tb testing.TB) {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.waitErr != nil {
			tb.Logf("host exited after SIGTERM: %v", s.waitErr)
		}
	case <-time.After(10 * time.Second):
		tb.Errorf("host did not exit within 10 s of SIGTERM; killing it")
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

// log returns the host's captured stdout and stderr (the last 64 KiB).
func (s *server) log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const max = 64 << 10
	if len(b) > max {
		b = append([]byte("...\n"), b[len(b)-max:]...)
	}
	return string(bytes.TrimSpace(b))
}

// regularFiles lists the regular files under root (relative path → size). A
// missing root is empty.
func regularFiles(tb testing.TB, root string) map[string]int64 {
	tb.Helper()
	files := map[string]int64{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(root, path)
		files[filepath.ToSlash(rel)] = fi.Size()
		return nil
	})
	if err != nil {
		tb.Fatalf("listing %s: %v", root, err)
	}
	return files
}
