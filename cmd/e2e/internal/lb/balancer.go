package lb

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// Kinds of load balancers the shipped configuration is made for.
const (
	HAProxy = "haproxy"
	Nginx   = "nginx"
)

// Executable finds the balancer's program on PATH or in /usr/sbin (where Debian installs
// both), with what to install when it is missing.
func Executable(kind string) (string, error) {
	if p, err := exec.LookPath(kind); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", kind)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s is not installed: apt-get install %s (make test-deps installs it)", kind, kind)
}

// Config runs scripts/lb-config.sh kind args... in the repository root and returns the
// configuration it prints.
func Config(root, kind string, args ...string) ([]byte, error) {
	cmd := exec.Command("bash", append([]string{filepath.Join(root, "scripts", "lb-config.sh"), kind}, args...)...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("scripts/lb-config.sh %s %s: %v: %s", kind, strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

// Balancer is a running HAProxy or nginx in front of nodes.
type Balancer struct {
	Kind string
	Port int
	Dir  string
	// AdminSocket is HAProxy's runtime API socket ("" for nginx).
	AdminSocket string

	cmd  *exec.Cmd
	done chan struct{}
}

// URL is the balancer's base URL.
func (b *Balancer) URL() string { return "http://127.0.0.1:" + strconv.Itoa(b.Port) }

// StartBalancer writes the shipped configuration for nodes (made by scripts/lb-config.sh
// with args added) into dir and runs the balancer on 127.0.0.1:port in the foreground. It
// returns once GET /health through the balancer answers 200.
func StartBalancer(root, kind, dir string, port int, nodes []*Node, args ...string) (*Balancer, error) {
	exe, err := Executable(kind)
	if err != nil {
		return nil, err
	}
	b := &Balancer{Kind: kind, Port: port, Dir: dir, done: make(chan struct{})}
	args = append([]string{"--listen", "127.0.0.1:" + strconv.Itoa(port)}, args...)
	if kind == HAProxy {
		b.AdminSocket = filepath.Join(dir, "admin.sock")
		args = append(args, "--admin-socket", b.AdminSocket)
	}
	for _, n := range nodes {
		args = append(args, n.Name+"="+n.Addr())
	}
	conf, err := Config(root, kind, args...)
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	switch kind {
	case HAProxy:
		path := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(path, conf, 0o644); err != nil {
			return nil, err
		}
		cmd = exec.Command(exe, "-db", "-f", path) // -db: foreground
	case Nginx:
		main, err := nginxMain(dir, conf)
		if err != nil {
			return nil, err
		}
		cmd = exec.Command(exe, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", main)
	default:
		return nil, fmt.Errorf("unknown balancer %q", kind)
	}
	logFile, err := os.Create(filepath.Join(dir, kind+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // nginx's workers go with it
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", kind, err)
	}
	b.cmd = cmd
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(b.done)
	}()
	if err := b.waitReady(30 * time.Second); err != nil {
		b.Stop()
		return nil, fmt.Errorf("%s: %w\n%s", kind, err, b.Log())
	}
	return b, nil
}

// nginxMain writes the nginx main configuration around the shipped http-level file conf:
// everything in dir, in the foreground.
func nginxMain(dir string, conf []byte) (string, error) {
	site := filepath.Join(dir, "chunked-uploader.conf")
	if err := os.WriteFile(site, conf, 0o644); err != nil {
		return "", err
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n" // the workers must reach the temporary directories in dir
	}
	main := fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
worker_processes 1;
%[2]sevents { worker_connections 1024; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[3]s;
}
`, dir, user, site)
	path := filepath.Join(dir, "nginx.conf")
	return path, os.WriteFile(path, []byte(main), 0o644)
}

func (b *Balancer) waitReady(timeout time.Duration) error {
	if err := harness.WaitHealthy(b.URL(), b.done, timeout); err != nil {
		return fmt.Errorf("through the balancer: %w", err)
	}
	return nil
}

// Stop stops the balancer (SIGTERM, then SIGKILL to its process group).
func (b *Balancer) Stop() {
	if b.cmd == nil {
		return
	}
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.done
	}
}

// Log returns the balancer's output and, for nginx, its error log (64 KiB at most each).
func (b *Balancer) Log() string {
	var out strings.Builder
	for _, f := range []string{b.Kind + ".log", "error.log"} {
		data, err := os.ReadFile(filepath.Join(b.Dir, f))
		if err != nil {
			continue
		}
		if len(data) > 64<<10 {
			data = data[len(data)-64<<10:]
		}
		fmt.Fprintf(&out, "--- %s %s ---\n%s", b.Kind, f, data)
	}
	return out.String()
}

// ServerState is HAProxy's state of node name's server in backend (node_<name>, the
// node's own uploads, or any_node, new uploads), as the runtime API's "show stat" reports
// it: "UP", "DOWN", "UP 1/2" (going down), "DOWN 1/2" (going up), "MAINT", ...
func (b *Balancer) ServerState(backend, name string) (string, error) {
	if b.AdminSocket == "" {
		return "", errors.New(b.Kind + " has no runtime API")
	}
	conn, err := net.DialTimeout("unix", b.AdminSocket, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "show stat\n"); err != nil {
		return "", err
	}
	r := csv.NewReader(bufio.NewReader(conn))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return "", fmt.Errorf("show stat: %w", err)
	}
	col := -1
	for i, h := range header {
		if h == "status" {
			col = i
		}
	}
	if col < 0 {
		return "", fmt.Errorf("show stat: no status column in %v", header)
	}
	for {
		rec, err := r.Read()
		if err != nil {
			return "", fmt.Errorf("show stat: no server %s/%s: %v", backend, name, err)
		}
		if len(rec) > col && strings.TrimPrefix(rec[0], "# ") == backend && rec[1] == name {
			return rec[col], nil
		}
	}
}
