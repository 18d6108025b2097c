package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/e2e/internal/services"
	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// privateServices is an instance of scripts/test-services.sh of the test's
// own (a Samba and an S3 server on free loopback ports, state in a temporary
// directory), so that the test may stop and restart its servers without
// disturbing the shared instance other tests use. It reuses the installed
// smbd and the S3 server binary the script built before.
type privateServices struct {
	script string
	state  string   // SVC_STATE
	env    []string // the script's environment
	s3     services.S3
	smb    smbService
}

// startPrivateServices starts a private instance and stops it when the test
// ends.
func startPrivateServices(tb testing.TB) *privateServices {
	tb.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	s3Port, err := harness.FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	smbPort, err := harness.FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	// Not tb.TempDir(): its parents are private (0700), and smbd serves the
	// share as the unprivileged SMB user.
	state, err := os.MkdirTemp("", "cu-e2e-svc-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(state) })
	if err := os.Chmod(state, 0o755); err != nil {
		tb.Fatal(err)
	}
	p := &privateServices{
		script: filepath.Join(root, "scripts", "test-services.sh"),
		state:  state,
	}
	// Only what the script needs: no SMB_* or S3_* settings of the caller.
	p.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"SVC_STATE=" + p.state,
		"S3_PORT=" + strconv.Itoa(s3Port),
		"SMB_PORT=" + strconv.Itoa(smbPort),
	}
	for _, k := range []string{"SVC_TOOLS", "S3_SERVER", "GOPATH", "GOMODCACHE", "GOCACHE", "GOFLAGS", "GOPROXY"} {
		if v, ok := os.LookupEnv(k); ok {
			p.env = append(p.env, k+"="+v)
		}
	}
	tb.Cleanup(func() {
		if _, err := p.run("stop"); err != nil {
			tb.Errorf("stopping the private test services: %v", err)
		}
	})
	p.start(tb)

	out, err := p.run("env")
	if err != nil {
		tb.Fatal(err)
	}
	vars := parseExports(out)
	p.s3 = services.S3{Endpoint: vars["TEST_S3_ENDPOINT"], AccessKey: vars["TEST_S3_ACCESS_KEY"], SecretKey: vars["TEST_S3_SECRET_KEY"], Region: vars["TEST_S3_REGION"]}
	p.smb = smbService{user: vars["TEST_SMB_USER"], pass: vars["TEST_SMB_PASS"], share: vars["TEST_SMB_SHARE"]}
	if p.smb.host, p.smb.port, err = net.SplitHostPort(vars["TEST_SMB_ADDR"]); err != nil || p.s3.Endpoint == "" {
		tb.Fatalf("test-services.sh env printed %q: want TEST_SMB_ADDR and TEST_S3_ENDPOINT", out)
	}
	if p.s3.Region == "" {
		p.s3.Region = "us-east-1"
	}
	tb.Logf("private test services in %s: S3 %s, SMB %s", p.state, p.s3.Endpoint, p.smb.addr())
	return p
}

// run runs the script with the instance's environment in a process group of
// its own (the S3 server it starts stays in that group).
func (p *privateServices) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{p.script}, args...)...)
	cmd.Env = p.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("SVC_STATE=%s test-services.sh %s: %v\n%s%s", p.state, strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.String(), nil
}

// start starts whatever of the instance is not running (both servers the
// first time; the one stopped by kill afterwards, on the same data).
func (p *privateServices) start(tb testing.TB) {
	tb.Helper()
	if _, err := p.run("start"); err != nil {
		tb.Fatal(err)
	}
}

// pidFile is where the script keeps the pid of the "s3" or "smb" server.
func (p *privateServices) pidFile(which string) string {
	if which == "s3" {
		return filepath.Join(p.state, "s3", "server.pid")
	}
	return filepath.Join(p.state, "smb", "run", "smbd.pid")
}

// pid is the pid of the "s3" or "smb" server, and the target of a signal to
// it: the S3 server alone; smbd's process group (the main smbd and the child
// serving each connection), as smbd --foreground leads a group of its own.
func (p *privateServices) pid(tb testing.TB, which string) (pid, target int) {
	tb.Helper()
	b, err := os.ReadFile(p.pidFile(which))
	if err != nil {
		tb.Fatalf("the %s server's pid: %v", which, err)
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		tb.Fatalf("%s: %q is not a pid", p.pidFile(which), b)
	}
	target = pid
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid && which == "smb" {
		target = -pid
	}
	return pid, target
}

func (p *privateServices) addr(which string) string {
	if which == "s3" {
		return strings.TrimPrefix(p.s3.Endpoint, "http://")
	}
	return p.smb.addr()
}

// kill stops the "s3" or "smb" server abruptly, as a crash would (SIGKILL),
// and returns once it is gone and its port closed.
func (p *privateServices) kill(tb testing.TB, which string) {
	tb.Helper()
	pid, target := p.pid(tb, which)
	if err := syscall.Kill(target, syscall.SIGKILL); err != nil {
		tb.Fatalf("kill -KILL %d (%s server): %v", target, which, err)
	}
	addr := p.addr(which)
	deadline := time.Now().Add(10 * time.Second)
	for processState(pid) != 0 || portOpen(addr) {
		if time.Now().After(deadline) {
			tb.Fatalf("the %s server (pid %d, %s) still runs 10 s after SIGKILL", which, pid, addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freeze stops the "s3" or "smb" server with SIGSTOP: connections stay open
// and nothing answers, as with a hung server or a network partition. thaw
// resumes it.
func (p *privateServices) freeze(tb testing.TB, which string) {
	tb.Helper()
	pid, target := p.pid(tb, which)
	if err := syscall.Kill(target, syscall.SIGSTOP); err != nil {
		tb.Fatalf("kill -STOP %d (%s server): %v", target, which, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for processState(pid) != 'T' {
		if time.Now().After(deadline) {
			tb.Fatalf("the %s server (pid %d) not stopped 10 s after SIGSTOP (state %q)", which, pid, processState(pid))
		}
		time.Sleep(5 * time.Millisecond)
	}
	tb.Cleanup(func() { _ = syscall.Kill(target, syscall.SIGCONT) }) // so that stop can end it
}

func (p *privateServices) thaw(tb testing.TB, which string) {
	tb.Helper()
	_, target := p.pid(tb, which)
	if err := syscall.Kill(target, syscall.SIGCONT); err != nil {
		tb.Fatalf("kill -CONT %d (%s server): %v", target, which, err)
	}
}

// processState is the state letter of pid in /proc (R, S, T, ...), or 0 when
// there is no such process or it is a zombie (killed processes re-parented to
// PID 1 may stay zombies for a while here).
func processState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) state ...: comm may contain spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	if st := b[i+2]; st != 'Z' && st != 'X' {
		return st
	}
	return 0
}

func portOpen(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// parseExports reads `export A=1 B=2` lines into a map.
func parseExports(s string) map[string]string {
	vars := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "export" {
			continue
		}
		for _, f := range fields[1:] {
			if k, v, ok := strings.Cut(f, "="); ok {
				vars[k] = v
			}
		}
	}
	return vars
}
