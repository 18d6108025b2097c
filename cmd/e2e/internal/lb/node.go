// Package lb runs chunked-uploader nodes and a real load balancer (HAProxy or nginx,
// configured by scripts/lb-config.sh) on loopback, for the cluster tests (cmd/e2e/cluster)
// and the load balancer benchmark (cmd/e2e/benchlb). It starts the built binaries as
// processes and talks to them over HTTP only.
package lb

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// Node is one host process with a NODE_ID, its own data directory and a fixed port: it can
// be killed and started again on the same data and address, as a machine that restarts.
type Node struct {
	Name string // NODE_ID
	Port int
	Dir  string // working directory, staging, database

	bin string
	env map[string]string

	mu    sync.Mutex
	proc  *exec.Cmd
	done  chan struct{} // closed when proc has exited
	err   error         // proc's Wait result, valid once done is closed
	start int           // number of starts, for the log file names
}

// NewNode prepares node name: the host in binDir (which is also its PLUGIN_DIR), data in dir,
// listening on 127.0.0.1:port. env adds to (and overrides) the node's settings.
func NewNode(binDir, name, dir string, port int, env map[string]string) (*Node, error) {
	n := &Node{Name: name, Port: port, Dir: dir, bin: filepath.Join(binDir, harness.HostBinary)}
	n.env = map[string]string{
		"NODE_ID":           name,
		"PLUGIN_DIR":        binDir,
		"TEMP_STORAGE_PATH": filepath.Join(dir, "staging"),
		"DATABASE_PATH":     filepath.Join(dir, "uploads.db"),
		"SERVER_HOST":       "127.0.0.1",
		"SERVER_PORT":       strconv.Itoa(port),
		"LOG_FORMAT":        "json",
	}
	for k, v := range env {
		n.env[k] = v
	}
	if err := os.MkdirAll(n.env["TEMP_STORAGE_PATH"], 0o755); err != nil {
		return nil, err
	}
	return n, nil
}

// URL is the node's base URL.
func (n *Node) URL() string { return "http://" + n.Addr() }

// Addr is the node's HOST:PORT.
func (n *Node) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.Port) }

// Start starts the host and waits until GET /health answers 200.
func (n *Node) Start(timeout time.Duration) error {
	n.mu.Lock()
	if n.proc != nil && !n.exited() {
		n.mu.Unlock()
		return fmt.Errorf("node %s is running", n.Name)
	}
	n.start++
	logFile, err := os.Create(filepath.Join(n.Dir, fmt.Sprintf("host-%d.log", n.start)))
	if err != nil {
		n.mu.Unlock()
		return err
	}
	cmd := exec.Command(n.bin)
	cmd.Dir = n.Dir
	// Nothing leaks in from the caller's environment.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + n.Dir, "TMPDIR=" + os.TempDir()}
	for k, v := range n.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A process group of its own: Kill takes the plugin with it, as a machine's death would.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		n.mu.Unlock()
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	done := make(chan struct{})
	n.proc, n.done = cmd, done
	go func() {
		err := cmd.Wait()
		logFile.Close()
		n.mu.Lock()
		n.err = err
		n.mu.Unlock()
		close(done)
	}()
	n.mu.Unlock()
	if err := n.waitHealthy(timeout); err != nil {
		n.Stop()
		return fmt.Errorf("node %s: %w\n%s", n.Name, err, n.Log())
	}
	return nil
}

// exited reports whether the current process has exited; n.mu must be held.
func (n *Node) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// Running reports whether the node's process is running.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc != nil && !n.exited()
}

func (n *Node) waitHealthy(timeout time.Duration) error {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if err := harness.WaitHealthy(n.URL(), done, timeout); err != nil {
		if !n.Running() {
			return fmt.Errorf("%w: %v", err, n.waitErr())
		}
		return err
	}
	return nil
}

func (n *Node) waitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Kill kills the node's process group (the host and its plugin) with SIGKILL, as a crash of
// the machine would, and waits until the host is gone.
func (n *Node) Kill() error {
	n.mu.Lock()
	cmd, done := n.proc, n.done
	n.mu.Unlock()
	if cmd == nil {
		return errors.New("node " + n.Name + " was never started")
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill node %s: %w", n.Name, err)
	}
	<-done
	return nil
}

// Term sends SIGTERM to the host only (as systemd's KillMode=mixed does); the host stops
// its plugin itself.
func (n *Node) Term() error {
	n.mu.Lock()
	cmd := n.proc
	n.mu.Unlock()
	if cmd == nil {
		return errors.New("node " + n.Name + " was never started")
	}
	return cmd.Process.Signal(syscall.SIGTERM)
}

// Wait waits up to timeout for the host to exit and returns its exit code (-1 for a signal).
func (n *Node) Wait(timeout time.Duration) (int, error) {
	n.mu.Lock()
	cmd, done := n.proc, n.done
	n.mu.Unlock()
	if cmd == nil {
		return 0, errors.New("node " + n.Name + " was never started")
	}
	select {
	case <-done:
	case <-time.After(timeout):
		return 0, fmt.Errorf("node %s did not exit within %v", n.Name, timeout)
	}
	return cmd.ProcessState.ExitCode(), nil
}

// Stop stops the node if it runs: SIGTERM, then SIGKILL to its group after a minute. It is
// what cleanups call.
func (n *Node) Stop() {
	if !n.Running() {
		return
	}
	_ = n.Term()
	if _, err := n.Wait(time.Minute); err != nil {
		_ = n.Kill()
	}
}

// Log returns the end (64 KiB at most) of the logs of every start of the node.
func (n *Node) Log() string {
	var all []byte
	n.mu.Lock()
	starts := n.start
	n.mu.Unlock()
	for i := 1; i <= starts; i++ {
		b, err := os.ReadFile(filepath.Join(n.Dir, fmt.Sprintf("host-%d.log", i)))
		if err != nil {
			continue
		}
		all = append(all, fmt.Sprintf("--- node %s, start %d ---\n", n.Name, i)...)
		all = append(all, b...)
	}
	const max = 64 << 10
	if len(all) > max {
		all = append([]byte("...\n"), all[len(all)-max:]...)
	}
	return string(all)
}

// FreePorts returns n distinct free loopback ports.
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}
