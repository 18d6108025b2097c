package reliability

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
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	testAPIKey    = "reliability-api-key-0123456789abcdef"
	testJWTSecret = "reliability-jwt-secret-0123456789abcdef-0123456789abcdef"
	mib           = 1 << 20

	// drainTimeout is how long a host may take to exit after SIGTERM: its own shutdown
	// deadline is 30 s (host/app.ShutdownTimeout), plus stopping the plugin.
	drainTimeout = 40 * time.Second
)

// server is a host with its data directory (database, staging, backend root), which
// survives restarts of the host process: start, kill and stop act on the current process.
type server struct {
	dir     string
	backend string // "local" or "fault"
	env     map[string]string
	client  *http.Client

	mu    sync.Mutex
	procs []*proc // every process started, the current one last
	base  string  // http://127.0.0.1:port of the current process
	addr  string  // 127.0.0.1:port
}

// proc is one host process.
type proc struct {
	cmd     *exec.Cmd
	port    int
	logPath string
	exited  chan struct{} // closed when the process has exited
	waitErr error         // valid after exited is closed
	plugins map[int]bool  // plugin pids seen as its children
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// exitCode is the process's exit status (-1 when killed by a signal).
func (p *proc) exitCode() int { return p.cmd.ProcessState.ExitCode() }

// newServer prepares a data directory and the environment of a host using backend
// ("local" or "fault"), with overrides applied last. It starts nothing.
func newServer(tb testing.TB, backend string, overrides map[string]string) *server {
	tb.Helper()
	dir := tb.TempDir()
	env := map[string]string{
		"API_KEY":            testAPIKey,
		"JWT_SECRET":         testJWTSecret,
		"PLUGIN_DIR":         binDir,
		"STORAGE_BACKEND":    backend,
		"TEMP_STORAGE_PATH":  filepath.Join(dir, "staging"),
		"DATABASE_PATH":      filepath.Join(dir, "uploads.db"),
		"SERVER_HOST":        "127.0.0.1",
		"CHUNK_SIZE_MB":      "1",
		"LOG_FORMAT":         "json",
		"STAGING_RESERVE_MB": "0",
	}
	switch backend {
	case "local":
		env["LOCAL_STORAGE_PATH"] = filepath.Join(dir, "uploads")
	case "fault":
		env["FAULT_ROOT"] = filepath.Join(dir, "objects")
		env["FAULT_CONTROL"] = filepath.Join(dir, "control")
	default:
		tb.Fatalf("unknown backend %q", backend)
	}
	for k, v := range overrides {
		env[k] = v
	}
	for _, k := range []string{"TEMP_STORAGE_PATH", "LOCAL_STORAGE_PATH", "FAULT_ROOT", "FAULT_CONTROL"} {
		if p := env[k]; p != "" {
			if err := os.MkdirAll(p, 0o755); err != nil {
				tb.Fatal(err)
			}
		}
	}
	s := &server{dir: dir, backend: backend, env: env, client: &http.Client{
		Timeout:   3 * time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	}}
	tb.Cleanup(func() {
		s.mu.Lock()
		procs := append([]*proc(nil), s.procs...)
		s.mu.Unlock()
		for _, p := range procs {
			if p.running() {
				s.stopProc(tb, p)
			}
			for pid := range p.plugins {
				killIfAlive(pid)
			}
		}
		if tb.Failed() {
			for _, p := range procs {
				tb.Logf("host log (%s):\n%s", p.logPath, tail(p.logPath))
			}
		}
	})
	return s
}

// startServer prepares a server and starts its host.
func startServer(tb testing.TB, backend string, overrides map[string]string) *server {
	tb.Helper()
	s := newServer(tb, backend, overrides)
	s.start(tb)
	return s
}

// cur is the current (last started) host process.
func (s *server) cur() *proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.procs) == 0 {
		return nil
	}
	return s.procs[len(s.procs)-1]
}

func (s *server) url(path string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base + path
}

func (s *server) hostAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

func (s *server) staging() string { return s.env["TEMP_STORAGE_PATH"] }

// objectRoot is where the backend puts delivered files.
func (s *server) objectRoot() string {
	if s.backend == "fault" {
		return s.env["FAULT_ROOT"]
	}
	return s.env["LOCAL_STORAGE_PATH"]
}

// start starts a host process on a fresh port and waits until GET /health answers 200.
func (s *server) start(tb testing.TB) *proc {
	tb.Helper()
	for attempt := 1; ; attempt++ {
		p, err := s.launch(tb)
		if err == nil {
			err = s.waitHealthy(p, 30*time.Second)
			if err == nil {
				return p
			}
			s.stopProc(tb, p)
			if strings.Contains(tail(p.logPath), "address already in use") && attempt < 3 {
				tb.Logf("port taken, retrying: %v", err)
				continue
			}
			err = fmt.Errorf("%v\nhost log:\n%s", err, tail(p.logPath))
		}
		tb.Fatalf("starting the host: %v", err)
	}
}

// launch starts a host process on a fresh port without waiting for it.
func (s *server) launch(tb testing.TB) (*proc, error) {
	tb.Helper()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	n := len(s.procs)
	s.mu.Unlock()
	logPath := filepath.Join(s.dir, fmt.Sprintf("host-%d.log", n))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(binDir, hostBinary))
	cmd.Dir = s.dir
	// A minimal environment: nothing leaks in from the caller's.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.dir, "TMPDIR=" + os.TempDir()}
	for k, v := range s.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "SERVER_PORT="+strconv.Itoa(port))
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Its own process group, so that a host that ignores SIGTERM can be killed with its
	// plugin at cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, port: port, logPath: logPath, exited: make(chan struct{}), plugins: map[int]bool{}}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.base = "http://127.0.0.1:" + strconv.Itoa(port)
	s.addr = "127.0.0.1:" + strconv.Itoa(port)
	s.mu.Unlock()
	return p, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *server) waitHealthy(p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if !p.running() {
			return fmt.Errorf("host exited before it was healthy: %v", p.waitErr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/health", p.port), nil)
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

// stop sends SIGTERM to the current host and waits for it to exit; it returns the exit
// code.
func (s *server) stop(tb testing.TB) int {
	tb.Helper()
	p := s.cur()
	s.stopProc(tb, p)
	return p.exitCode()
}

func (s *server) stopProc(tb testing.TB, p *proc) {
	if !p.running() {
		return
	}
	s.notePlugins(p)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(drainTimeout):
		tb.Errorf("host (pid %d) did not exit within %v of SIGTERM; killing its process group", p.pid(), drainTimeout)
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.exited
	}
}

// kill SIGKILLs the current host process, as a crash would, and waits for it to be gone.
// Its plugin, which a crashed host cannot stop, is killed too (by pid) unless it exited
// by itself; kill reports whether it had outlived the host.
func (s *server) kill(tb testing.TB) (orphan bool) {
	tb.Helper()
	p := s.cur()
	plugins := s.notePlugins(p)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		tb.Fatalf("kill -9 %d: %v", p.pid(), err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		tb.Fatalf("host %d still running 10 s after SIGKILL", p.pid())
	}
	time.Sleep(100 * time.Millisecond)
	for _, pid := range plugins {
		if alive(pid) {
			orphan = true
			killIfAlive(pid)
			waitGone(tb, pid, 10*time.Second)
		}
	}
	return orphan
}

// notePlugins records the plugin processes of p (its children) and returns their pids.
func (s *server) notePlugins(p *proc) []int {
	pids := pluginChildren(p.pid())
	s.mu.Lock()
	for _, pid := range pids {
		p.plugins[pid] = true
	}
	s.mu.Unlock()
	return pids
}

// pluginPID waits until the current host has exactly one plugin child and returns its pid.
func (s *server) pluginPID(tb testing.TB) int {
	tb.Helper()
	p := s.cur()
	deadline := time.Now().Add(15 * time.Second)
	for {
		pids := s.notePlugins(p)
		if len(pids) == 1 {
			return pids[0]
		}
		if time.Now().After(deadline) {
			tb.Fatalf("host %d has plugin children %v, want exactly one", p.pid(), pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pluginChildren lists the children of pid (over all its threads) that are plugins.
func pluginChildren(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var pids []int
	seen := map[int]bool{}
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			n, err := strconv.Atoi(f)
			if err != nil || seen[n] {
				continue
			}
			seen[n] = true
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n))
			if err == nil && bytes.Contains(cmdline, []byte(pluginPrefix)) && alive(n) {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

// alive reports whether pid is a process that is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses, which may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// waitGone waits until pid is no longer a live process and every thread of it has exited:
// a killed process's main thread shows as a zombie while its other threads still exit,
// and until they have, its parent (the host) cannot see it exit.
func waitGone(tb testing.TB, pid int, timeout time.Duration) time.Duration {
	tb.Helper()
	start := time.Now()
	for alive(pid) || exiting(pid) {
		if time.Since(start) > timeout {
			tb.Fatalf("process %d still alive %v later", pid, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// exiting reports whether pid still has threads other than its main one.
func exiting(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	return err == nil && len(tasks) > 1
}

// killIfAlive SIGKILLs pid if it is still a live plugin process (never anything else).
func killIfAlive(pid int) {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(pluginPrefix)) || !alive(pid) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// tail returns the last 64 KiB of a log file.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const max = 64 << 10
	if len(b) > max {
		b = append([]byte("...\n"), b[len(b)-max:]...)
	}
	return string(bytes.TrimSpace(b))
}

// logs returns the logs of every host process of s so far.
func (s *server) logs() string {
	s.mu.Lock()
	procs := append([]*proc(nil), s.procs...)
	s.mu.Unlock()
	var b strings.Builder
	for _, p := range procs {
		data, _ := os.ReadFile(p.logPath)
		b.Write(data)
	}
	return b.String()
}

// fault turns a fault mode of the fault plugin on or off through its control directory.
func (s *server) fault(tb testing.TB, mode string, on bool) {
	tb.Helper()
	path := filepath.Join(s.env["FAULT_CONTROL"], mode)
	if on {
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		tb.Fatal(err)
	}
}

// puts counts the Put calls the fault plugin received for key.
func (s *server) puts(tb testing.TB, key string) int {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(s.env["FAULT_ROOT"], ".puts"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if line == key {
			n++
		}
	}
	return n
}

// regularFiles lists the regular files under root (relative path → size). A missing root
// is empty.
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

// stagedFiles lists the names in TEMP_STORAGE_PATH/<id> (nil when the directory does not
// exist).
func (s *server) stagedFiles(tb testing.TB, id string) []string {
	tb.Helper()
	entries, err := os.ReadDir(filepath.Join(s.staging(), id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// waitFor polls cond every 20 ms until it holds or timeout passes, and reports whether
// it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitUnstaged waits until TEMP_STORAGE_PATH/<id> is gone: a delivery is recorded complete
// a moment before its staged parts are removed.
func (s *server) waitUnstaged(tb testing.TB, id string) {
	tb.Helper()
	if !waitFor(5*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(s.staging(), id))
		return errors.Is(err, fs.ErrNotExist)
	}) {
		tb.Errorf("TEMP_STORAGE_PATH/%s still holds %v 5 s after the delivery", id, s.stagedFiles(tb, id))
	}
}

// keptParts lists the part files of upload id as the host keeps them: staged, or held by
// the backend (part-wise delivery removes a part from staging once the backend holds it),
// plus anything else in its staging directory.
func (s *server) keptParts(tb testing.TB, id string) []string {
	tb.Helper()
	names := s.stagedFiles(tb, id)
	st := s.status(tb, id)
	for _, p := range st.Parts {
		if name := partName(p.Part); p.Delivered && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}
