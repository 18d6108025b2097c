package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Secrets every host gets.
const (
	APIKey    = "harness-api-key-0123456789abcdef"
	JWTSecret = "harness-jwt-secret-0123456789abcdef-0123456789abcdef"
)

// DrainTimeout is how long a host may take to exit after SIGTERM: its own shutdown deadline
// is 30 s (host/app.ShutdownTimeout), plus stopping the plugin.
const DrainTimeout = 40 * time.Second

// dirKeys are the settings naming directories that Launch creates when set.
var dirKeys = []string{"TEMP_STORAGE_PATH", "LOCAL_STORAGE_PATH", "FAULT_ROOT", "FAULT_CONTROL"}

// Host is a host with its data directory (database, staging, backend root), which survives
// restarts of the host process: Start, Kill and Stop act on the current process.
type Host struct {
	// Dir is the working directory and data root of every process.
	Dir string
	// Env is the environment of every process (SERVER_PORT aside, which each process gets
	// afresh). Change it only between processes.
	Env map[string]string
	// Client sends the requests of Do and its callers.
	Client *http.Client
	// StopTimeout is how long Stop and the cleanup wait for a process to exit after SIGTERM
	// before they fail the test and kill its process group: DrainTimeout unless changed.
	StopTimeout time.Duration

	mu    sync.Mutex
	procs []*Proc // every process started, the current one last
	base  string  // http://127.0.0.1:port of the current process
	addr  string  // 127.0.0.1:port
}

// Proc is one host process, with stdout and stderr in one log file.
type Proc struct {
	*Process
	Port    int
	LogPath string
	plugins map[int]bool // plugin pids seen as its children
}

// Log returns the last 64 KiB of the process's stdout and stderr.
func (p *Proc) Log() string { return Tail(p.LogPath) }

// New prepares a data directory and the environment of a host: secrets, PLUGIN_DIR=BinDir(),
// staging and database in the directory, 127.0.0.1, 1 MiB chunks, JSON logs, with each of
// envs applied in turn over these. It starts nothing. At cleanup every process still running
// is stopped, plugins left behind are killed, and the logs are shown if the test failed.
func New(tb testing.TB, envs ...map[string]string) *Host {
	tb.Helper()
	dir := tb.TempDir()
	h := &Host{Dir: dir, Env: map[string]string{
		"API_KEY":           APIKey,
		"JWT_SECRET":        JWTSecret,
		"PLUGIN_DIR":        binDir,
		"TEMP_STORAGE_PATH": filepath.Join(dir, "staging"),
		"DATABASE_PATH":     filepath.Join(dir, "uploads.db"),
		"SERVER_HOST":       "127.0.0.1",
		"CHUNK_SIZE_MB":     "1",
		"LOG_FORMAT":        "json",
	}, StopTimeout: DrainTimeout, Client: &http.Client{
		Timeout:   5 * time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	}}
	h.Setenv(envs...)
	tb.Cleanup(func() {
		procs := h.Procs()
		for _, p := range procs {
			if p.Running() {
				h.stopProc(tb, p)
			}
			for pid := range p.plugins {
				KillPlugin(pid)
			}
		}
		if tb.Failed() {
			for _, p := range procs {
				tb.Logf("host log (%s):\n%s", p.LogPath, p.Log())
			}
		}
	})
	return h
}

// Start prepares a host (New) and starts it.
func Start(tb testing.TB, envs ...map[string]string) *Host {
	tb.Helper()
	h := New(tb, envs...)
	h.Start(tb)
	return h
}

// Setenv applies each of envs in turn to h.Env.
func (h *Host) Setenv(envs ...map[string]string) {
	for _, env := range envs {
		for k, v := range env {
			h.Env[k] = v
		}
	}
}

// Procs lists every process started so far, the current one last.
func (h *Host) Procs() []*Proc {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Proc(nil), h.procs...)
}

// Cur is the current (last started) host process, nil before the first.
func (h *Host) Cur() *Proc {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.procs) == 0 {
		return nil
	}
	return h.procs[len(h.procs)-1]
}

// URL is the address of path on the current process.
func (h *Host) URL(path string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.base + path
}

// Addr is the current process's 127.0.0.1:port.
func (h *Host) Addr() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.addr
}

// PID is the current process's pid.
func (h *Host) PID() int { return h.Cur().PID() }

// PartsInFlight returns the host's gauge of part uploads being received now (GET
// /metrics), -1 when it cannot be read: a test that needs the host to be reading a part's
// body waits for it, wherever the part is written.
func (h *Host) PartsInFlight() int {
	resp, err := http.Get(h.URL("/metrics"))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "chunked_uploader_parts_in_flight "); ok {
			if n, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return int(n)
			}
		}
	}
	return -1
}

// Staging is the host's TEMP_STORAGE_PATH.
func (h *Host) Staging() string { return h.Env["TEMP_STORAGE_PATH"] }

// Start starts a host process on a fresh port and waits until GET /health answers 200; a
// port taken meanwhile is retried.
func (h *Host) Start(tb testing.TB) *Proc {
	tb.Helper()
	for attempt := 1; ; attempt++ {
		p, err := h.Launch(tb)
		if err == nil {
			err = p.waitHealthy(30 * time.Second)
			if err == nil {
				return p
			}
			h.stopProc(tb, p)
			if strings.Contains(p.Log(), "address already in use") && attempt < 3 {
				tb.Logf("port taken, retrying: %v", err)
				continue
			}
			err = fmt.Errorf("%v\nhost log:\n%s", err, p.Log())
		}
		tb.Fatalf("starting the host: %v", err)
	}
}

// Launch starts a host process on a fresh port without waiting for it. Its environment is
// PATH, HOME=Dir, TMPDIR and h.Env only: nothing leaks in from the test's environment.
func (h *Host) Launch(tb testing.TB) (*Proc, error) {
	tb.Helper()
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	for _, k := range dirKeys {
		if p := h.Env[k]; p != "" {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return nil, err
			}
		}
	}
	h.mu.Lock()
	n := len(h.procs)
	h.mu.Unlock()
	logPath := filepath.Join(h.Dir, fmt.Sprintf("host-%d.log", n))
	env := maps.Clone(h.Env)
	env["SERVER_PORT"] = strconv.Itoa(port)
	proc, err := StartProcess(Bin(HostBinary), nil, h.Dir, env, logPath, logPath)
	if err != nil {
		return nil, err
	}
	p := &Proc{Process: proc, Port: port, LogPath: logPath, plugins: map[int]bool{}}
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.base = "http://127.0.0.1:" + strconv.Itoa(port)
	h.addr = "127.0.0.1:" + strconv.Itoa(port)
	h.mu.Unlock()
	return p, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitHealthy waits until GET /health of the current process answers 200.
func (h *Host) WaitHealthy(timeout time.Duration) error { return h.Cur().waitHealthy(timeout) }

func (p *Proc) waitHealthy(timeout time.Duration) error {
	err := WaitHealthy(p.Base, p.Exited, timeout)
	if err != nil && !p.Running() {
		err = fmt.Errorf("%w: %v", err, p.WaitErr)
	}
	return err
}

// WaitHealthy waits until GET base/health answers 200; it gives up early when exited (which
// may be nil) is closed.
func WaitHealthy(base string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("the process exited before it was healthy")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
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

// Stop sends SIGTERM to the current process and waits for it to exit (killing its process
// group, and failing the test, after StopTimeout); it returns the exit code.
func (h *Host) Stop(tb testing.TB) int {
	tb.Helper()
	p := h.Cur()
	h.stopProc(tb, p)
	return p.ExitCode()
}

func (h *Host) stopProc(tb testing.TB, p *Proc) {
	if !p.Running() {
		return
	}
	h.notePlugins(p)
	p.Terminate(tb, h.StopTimeout)
}

// Restart stops the current process (SIGTERM) and starts a new one on the same data.
func (h *Host) Restart(tb testing.TB) *Proc {
	tb.Helper()
	h.Stop(tb)
	return h.Start(tb)
}

// Kill SIGKILLs the current host process, as a crash would, and waits for it to be gone. Its
// plugin, which a crashed host cannot stop, is killed too (by pid) unless it exited by
// itself; Kill reports whether it had outlived the host.
func (h *Host) Kill(tb testing.TB) (orphan bool) {
	tb.Helper()
	p := h.Cur()
	plugins := h.notePlugins(p)
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		tb.Fatalf("kill -9 %d: %v", p.PID(), err)
	}
	select {
	case <-p.Exited:
	case <-time.After(10 * time.Second):
		tb.Fatalf("host %d still running 10 s after SIGKILL", p.PID())
	}
	time.Sleep(100 * time.Millisecond)
	for _, pid := range plugins {
		if Alive(pid) {
			orphan = true
			KillPlugin(pid)
			WaitGone(tb, pid, 10*time.Second)
		}
	}
	return orphan
}

// notePlugins records the plugin processes of p (its children) and returns their pids.
func (h *Host) notePlugins(p *Proc) []int {
	pids := PluginChildren(p.PID())
	h.mu.Lock()
	for _, pid := range pids {
		p.plugins[pid] = true
	}
	h.mu.Unlock()
	return pids
}

// PluginPID waits until the current process has exactly one plugin child and returns its pid.
func (h *Host) PluginPID(tb testing.TB) int {
	tb.Helper()
	p := h.Cur()
	deadline := time.Now().Add(15 * time.Second)
	for {
		pids := h.notePlugins(p)
		if len(pids) == 1 {
			return pids[0]
		}
		if time.Now().After(deadline) {
			tb.Fatalf("host %d has plugin children %v, want exactly one", p.PID(), pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Log returns the last 64 KiB of the current process's log.
func (h *Host) Log() string { return h.Cur().Log() }

// Logs returns the whole logs of every process so far, oldest first.
func (h *Host) Logs() string {
	var b strings.Builder
	for _, p := range h.Procs() {
		data, _ := os.ReadFile(p.LogPath)
		b.Write(data)
	}
	return b.String()
}

// Tail returns the last 64 KiB of a log file.
func Tail(path string) string {
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
